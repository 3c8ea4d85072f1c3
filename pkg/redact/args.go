package redact

import (
	"path"
	"strings"
)

// credentialHeaders carry credentials whatever the keys say.
var credentialHeaders = []string{"authorization", "proxy-authorization", "cookie", "set-cookie"}

// clientFlag is a client's own option whose value is a password: the next
// argument or, for a short option, what follows it in the same argument.
// user: the value is "user:password", of which only the password goes.
type clientFlag struct {
	name       string
	next, user bool
}

// clientFlags are the short or unusual password options of common clients
// (the long ones with sensitive names need no entry). mysql's "-p" alone
// asks for the password, so only "-pSECRET" is one.
var clientFlags = map[string][]clientFlag{
	"redis-cli":     {{"-a", true, false}, {"--pass", true, false}},
	"mysql":         {{"-p", false, false}},
	"mariadb":       {{"-p", false, false}},
	"mysqldump":     {{"-p", false, false}},
	"mariadb-dump":  {{"-p", false, false}},
	"mysqladmin":    {{"-p", false, false}},
	"mariadb-admin": {{"-p", false, false}},
	"curl": {{"-u", true, true}, {"--user", true, true}, {"-U", true, true}, {"--proxy-user", true, true},
		{"--oauth2-bearer", true, false}},
}

// Args returns a process's arguments (argv) with credentials replaced by
// Marker: the userinfo and parameters of URLs (as URL), the value of an
// option or assignment whose name is sensitive (`--password=x`,
// `--api-key x`, `-Djavax.net.ssl.keyStorePassword=x`, `TOKEN=x`), a header
// argument whose name is a credential header or sensitive
// (`Authorization: Bearer x`, `X-Api-Key: x`), and the passwords of a few
// clients' own options (redis-cli -a, mysql -pX, curl -u user:x). It
// returns argv itself when nothing is replaced, else a new slice.
func (r *Redactor) Args(argv []string) []string {
	var out []string
	set := func(i int, v string) {
		if v == argv[i] {
			return
		}
		if out == nil {
			out = append([]string(nil), argv...)
		}
		out[i] = v
	}
	var prog []clientFlag
	if len(argv) > 0 {
		prog = clientFlags[path.Base(argv[0])]
	}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if v, f := r.clientFlag(prog, a); v != a || f != nil {
			set(i, v)
			if f != nil && i+1 < len(argv) {
				set(i+1, f.passwordOf(argv[i+1]))
				i++
			}
			continue
		}
		if v, next := r.arg(a); v != a || next {
			set(i, v)
			if next && i+1 < len(argv) {
				set(i+1, Marker)
				i++
			}
			continue
		}
	}
	if out == nil {
		return argv
	}
	return out
}

// Cmdline is the space-joined arguments after Args.
func (r *Redactor) Cmdline(argv []string) string { return strings.Join(r.Args(argv), " ") }

// arg redacts one argument; next reports that the following argument is
// the value of a sensitive option.
func (r *Redactor) arg(a string) (string, bool) {
	if strings.Contains(a, "://") {
		if i := strings.IndexByte(a, '='); i > 0 && !strings.Contains(a[:i], "://") && r.option(a[:i]) {
			return a[:i+1] + Marker, false
		}
		return r.URL(a), false
	}
	if name, val, ok := strings.Cut(a, ":"); ok && isHeaderName(name) && strings.TrimSpace(val) != "" {
		if isCredentialHeader(name) || r.Sensitive(name) {
			return a[:len(a)-len(strings.TrimLeft(val, " \t"))] + Marker, false
		}
		return a, false
	}
	if name, val, ok := strings.Cut(a, "="); ok {
		if val != "" && r.option(name) {
			return name + "=" + Marker, false
		}
		return a, false
	}
	// "--password x", "-password x"; not a single-letter option.
	if strings.HasPrefix(a, "--") && len(a) > 2 || strings.HasPrefix(a, "-") && len(a) > 2 && !strings.HasPrefix(a, "--") {
		return a, r.option(a)
	}
	return a, false
}

// option reports whether an option or variable name (with its dashes) is
// sensitive.
func (r *Redactor) option(name string) bool {
	n := strings.TrimLeft(name, "-")
	if n == "" || strings.IndexAny(n, " \t/\\\"'") >= 0 {
		return false
	}
	return r.Sensitive(n)
}

// clientFlag handles the program's own password options: the value
// redacted, or next when it is the following argument (then
// passwordOf(f, next argument) is its redacted value).
func (r *Redactor) clientFlag(flags []clientFlag, a string) (string, *clientFlag) {
	for i := range flags {
		f := &flags[i]
		switch {
		case a == f.name && f.next:
			return a, f
		case strings.HasPrefix(a, f.name+"="):
			return f.name + "=" + f.passwordOf(a[len(f.name)+1:]), nil
		case len(f.name) == 2 && len(a) > 2 && strings.HasPrefix(a, f.name):
			return f.name + f.passwordOf(a[2:]), nil // -pSECRET
		}
	}
	return a, nil
}

// passwordOf is the redacted value of the option.
func (f *clientFlag) passwordOf(v string) string {
	if !f.user {
		return Marker
	}
	if user, _, ok := strings.Cut(v, ":"); ok {
		return user + ":" + Marker
	}
	return v
}

func isHeaderName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isWordByte(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isCredentialHeader(s string) bool {
	for _, h := range credentialHeaders {
		if strings.EqualFold(s, h) {
			return true
		}
	}
	return false
}
