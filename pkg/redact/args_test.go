package redact

import (
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	r := Default()
	for _, tc := range []struct{ in, want, why string }{
		{"python3 /srv/productpage.py 9080", "python3 /srv/productpage.py 9080", "nothing"},
		{"curl -s http://127.0.0.1:15001/productpage?token=T1&page=2", "curl -s http://127.0.0.1:15001/productpage?token=REDACTED&page=2", "URL argument"},
		{"psql postgresql://app:S3CR3T@db:5432/shop?sslmode=require&password=x",
			"psql postgresql://REDACTED:REDACTED@db:5432/shop?sslmode=require&password=REDACTED", "connection URI"},
		{"curl -H|Authorization: Bearer abc|-H|Cookie: s=1|-H|X-Api-Key: k|-H|Accept: */*",
			"curl -H|Authorization: REDACTED|-H|Cookie: REDACTED|-H|X-Api-Key: REDACTED|-H|Accept: */*", "header arguments"},
		{"curl -u|alice:pw|https://h/", "curl -u|alice:REDACTED|https://h/", "curl -u keeps the user"},
		{"curl -ualice:pw --proxy-user=bob:pw2", "curl -ualice:REDACTED --proxy-user=bob:REDACTED", "attached and '=' forms"},
		{"curl --oauth2-bearer tok http://h", "curl --oauth2-bearer REDACTED http://h", "curl's bearer option"},
		{"/usr/bin/redis-cli -h 10.0.0.1 -a pw PING", "/usr/bin/redis-cli -h 10.0.0.1 -a REDACTED PING", "redis-cli -a"},
		{"redis-cli --pass pw", "redis-cli --pass REDACTED", "redis-cli --pass"},
		{"mariadb -u root -pS3CR3T shop", "mariadb -u root -pREDACTED shop", "mysql -pSECRET"},
		{"mysql -u root -p shop", "mysql -u root -p shop", "mysql -p asks for the password: shop is the database"},
		{"ls -a secret.txt", "ls -a secret.txt", "-a is redis-cli's only"},
		{"app --password=pw --user=u", "app --password=REDACTED --user=u", "option with '='"},
		{"app --api-key k --verbose", "app --api-key REDACTED --verbose", "option and its value"},
		{"app -token k", "app -token REDACTED", "single-dash long option"},
		{"app -k v", "app -k v", "a single-letter option is not a name"},
		{"java -Djavax.net.ssl.keyStorePassword=changeit -jar x.jar", "java -Djavax.net.ssl.keyStorePassword=REDACTED -jar x.jar", "Java property"},
		{"env AWS_SECRET_ACCESS_KEY=abc PGPASSWORD=pw HOME=/root app", "env AWS_SECRET_ACCESS_KEY=REDACTED PGPASSWORD=pw HOME=/root app",
			"assignments: PGPASSWORD is one word, not a key"},
		{"app --url=https://u:p@h/x", "app --url=https://REDACTED:REDACTED@h/x", "URL in an option"},
		{"app --token=https://h/x", "app --token=REDACTED", "sensitive option holding a URL"},
		{"app --password", "app --password", "option without value at the end"},
		{"redis-cli -a", "redis-cli -a", "client option without value"},
		{"app key:value", "app key:REDACTED", "a header-like argument of a sensitive name"},
		{"app 12:30", "app 12:30", "not a header"},
	} {
		argv := strings.Split(tc.in, " ")
		if strings.Contains(tc.in, "|") {
			argv = strings.Split(tc.in, "|")
			argv = append(strings.Split(argv[0], " "), argv[1:]...)
		}
		got := strings.Join(r.Args(argv), " ")
		want := strings.ReplaceAll(tc.want, "|", " ")
		if got != want {
			t.Errorf("%s:\nArgs(%q)\n = %q\nwant %q", tc.why, argv, got, want)
		}
	}
	argv := []string{"python3", "app.py", "--port", "9080"}
	if got := r.Args(argv); &got[0] != &argv[0] {
		t.Error("Args copied arguments with nothing to redact")
	}
	if got := r.Cmdline([]string{"app", "--secret", "x"}); got != "app --secret REDACTED" {
		t.Errorf("Cmdline: %q", got)
	}
}
