package l7

import (
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// loginSecret is the password of every login below; no field of any
// message may hold it, or a part of it.
const loginSecret = "S3cretLogin42"

// leaks returns the string fields of m that hold the secret (or its first
// half: a field cut by the capture).
func leaks(m *Message) []string {
	var out []string
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.String && strings.Contains(f.String(), loginSecret[:6]) {
			out = append(out, v.Type().Field(i).Name+"="+f.String())
		}
	}
	return out
}

// feedExchanges feeds a conversation exchange by exchange, each side cut
// at one point, as a capture delivers it; it returns what was emitted.
func feedExchanges(st Stream, conv [][2][]byte, at int) []Message {
	var out []Message
	emit := func(m *Message) { out = append(out, *m) }
	for _, ex := range conv {
		for side, b := range ex {
			if len(b) > 0 {
				feedSplit(st, b, side == 1, at%len(b), emit)
			}
		}
	}
	return out
}

// checkLogin feeds the conversation at every cut: no message holds the
// secret, and the requests after the login are the ones wanted.
func checkLogin(t *testing.T, name string, newStream func() Stream, conv [][2][]byte, want []string) {
	t.Helper()
	longest := 0
	for _, ex := range conv {
		longest = max(longest, len(ex[0]), len(ex[1]))
	}
	for at := 0; at <= longest; at++ {
		var got []string
		for _, m := range feedExchanges(newStream(), conv, at) {
			if l := leaks(&m); l != nil {
				t.Fatalf("%s, cut at %d: the password reached a message: %v", name, at, l)
			}
			if !m.Response {
				got = append(got, strings.TrimSpace(m.Method+" "+m.Path))
			} else if m.Partial {
				t.Fatalf("%s, cut at %d: a response without its request (a login frame read as one?)", name, at)
			}
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%s, cut at %d: requests %q, want %q", name, at, got, want)
		}
	}
}

// TestRedisLogin: AUTH and HELLO … AUTH keep their command, never the
// password (nor, for AUTH, the user name before it), whole or cut by the
// capture.
func TestRedisLogin(t *testing.T) {
	for _, tc := range []struct{ raw, method, path string }{
		{"*2\r\n$4\r\nAUTH\r\n$13\r\n" + loginSecret + "\r\n", "AUTH", ""},
		{"*3\r\n$4\r\nauth\r\n$5\r\nalice\r\n$13\r\n" + loginSecret + "\r\n", "AUTH", ""},
		{"*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$13\r\n" + loginSecret + "\r\n", "HELLO", "3"},
		{"*4\r\n$5\r\nHELLO\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$13\r\n" + loginSecret + "\r\n", "HELLO", ""}, // no version: malformed, still nothing
		{"*2\r\n$4\r\nAUTH\r\n$13\r\n" + loginSecret[:8], "AUTH", ""},                                       // cut by the capture
		{"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", "SET", "key"},                                   // other commands keep their key
	} {
		var m Message
		err := Redis{}.ParseDir([]byte(tc.raw), false, &m)
		if err != nil && err != ErrIncomplete {
			t.Errorf("%q: %v", tc.raw, err)
		}
		if m.Method != tc.method || m.Path != tc.path || leaks(&m) != nil {
			t.Errorf("%q: method %q path %q, want %q %q", tc.raw, m.Method, m.Path, tc.method, tc.path)
		}
	}
}

// TestPostgreSQLLogin: cleartext, MD5 and SCRAM password messages ('p')
// are never requests; the query after the login is.
func TestPostgreSQLLogin(t *testing.T) {
	ok := cat(pgMsg('R', 0, 0, 0, 0), pgMsg('Z', 'I'))
	query := [2][]byte{pgMsg('Q', cstr("SELECT 1")...), cat(pgMsg('T', 0, 1), pgMsg('D', 0, 1, 0, 0, 0, 1, '1'), pgMsg('C', cstr("SELECT 1")...), pgMsg('Z', 'I'))}
	for name, login := range map[string][][2][]byte{
		"cleartext": {
			{pgStartMsg, pgMsg('R', 0, 0, 0, 3)}, // AuthenticationCleartextPassword
			{pgMsg('p', cstr(loginSecret)...), ok},
		},
		"md5": {
			{pgStartMsg, pgMsg('R', 0, 0, 0, 5, 1, 2, 3, 4)}, // AuthenticationMD5Password, salt
			{pgMsg('p', cstr("md5"+loginSecret)...), ok},
		},
		"scram": {
			{pgStartMsg, pgMsg('R', cat([]byte{0, 0, 0, 10}, cstr("SCRAM-SHA-256", ""))...)}, // AuthenticationSASL
			{pgMsg('p', cat(cstr("SCRAM-SHA-256"), []byte{0, 0, 0, 32}, []byte("n,,n=,r="+loginSecret+"abcdefghijk"))...),
				pgMsg('R', cat([]byte{0, 0, 0, 11}, []byte("r=x,s=c2FsdA==,i=4096"))...)},
			{pgMsg('p', []byte("c=biws,r=x,p="+loginSecret)...), cat(pgMsg('R', cat([]byte{0, 0, 0, 12}, []byte("v=x"))...), ok)},
		},
	} {
		checkLogin(t, "postgres "+name, PostgreSQL{}.NewStream, append(login, query), []string{"SELECT SELECT ?"})
	}
	// A capture that starts at the password message: nothing is read of it.
	var m Message
	if err := (PostgreSQL{}).Parse(pgMsg('p', cstr(loginSecret)...), &m); err == nil || leaks(&m) != nil {
		t.Errorf("a password message parsed: %v %+v", err, m)
	}
}

// TestMySQLLogin: the handshake response's auth data (here a cleartext
// password, as mysql_clear_password sends it), an auth switch response and
// COM_CHANGE_USER's auth data never reach a message.
func TestMySQLLogin(t *testing.T) {
	handshake := cat(
		[]byte{0x0c, 0xa2, 0xaf, 0x00}, // capabilities: SECURE_CONNECTION, PLUGIN_AUTH (no CONNECT_WITH_DB, no LENENC)
		[]byte{0, 0, 0, 1, 0x2d},       // max packet, charset
		make([]byte, 23),               // filler
		cstr("alice"),                  // user
		[]byte{byte(len(loginSecret))}, // auth data length (SECURE_CONNECTION)
		[]byte(loginSecret),            // auth data: the password itself
		cstr("mysql_clear_password"),   // plugin
	)
	switchReq := myPkt(2, append([]byte{0xfe}, cstr("mysql_clear_password")...)...)
	changeUser := myPkt(0, cat([]byte{0x11}, cstr("bob"), []byte{byte(len(loginSecret))}, []byte(loginSecret), cstr("shop"))...)
	okPkt := func(seq byte) []byte { return myPkt(seq, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00) }
	conv := [][2][]byte{
		{nil, myGreeting},
		{myPkt(1, handshake...), switchReq},
		{myPkt(3, cstr(loginSecret)...), okPkt(4)}, // auth switch response: the password again
		{myQ, myResultSet},
		{changeUser, okPkt(1)},
		{myPkt(0, append([]byte{myQuery}, "SELECT 1"...)...), okPkt(1)},
	}
	checkLogin(t, "mysql", MySQL{}.NewStream, conv, []string{"SELECT SELECT title FROM books WHERE id > ?", "CHANGE_USER", "SELECT SELECT ?"})
}

// TestKafkaSASL: SASL/PLAIN and SCRAM through SaslHandshake v0 (bare
// token frames both ways, which must be neither requests nor responses,
// whatever the user name) and through SaslAuthenticate (v1): the password
// never reaches a message, the Metadata request after the login does, and
// no response goes without its request.
func TestKafkaSASL(t *testing.T) {
	frame := func(s string) []byte { return append([]byte{0, 0, 0, byte(len(s))}, s...) }
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 4
	topic := kmsg.NewMetadataRequestTopic()
	topic.Topic = kmsg.StringPtr("orders")
	meta.Topics = append(meta.Topics, topic)
	metaResp := kmsg.NewPtrMetadataResponse()
	metaResp.Version = 4
	scram := [][2]string{ // client and broker tokens (RFC 5802), the proof derived from the password
		{"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL", "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"},
		{"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=" + loginSecret, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
	}
	for _, tc := range []struct {
		mech   string
		tokens [][2]string
	}{
		{"PLAIN", [][2]string{{"\x00alice\x00" + loginSecret, ""}}},
		{"PLAIN", [][2]string{{"\x00Alice\x00" + loginSecret, ""}}}, // api key 0x0041 is a known one
		{"PLAIN", [][2]string{{"\x00\x00" + loginSecret, ""}}},      // api key 0: Produce
		{"SCRAM-SHA-256", scram},
	} {
		hs.Mechanism = tc.mech
		hs.Version, hsResp.Version = 0, 0
		v0 := [][2][]byte{{kreq(hs, 1), kresp(hsResp, 1)}}
		for _, tok := range tc.tokens {
			v0 = append(v0, [2][]byte{frame(tok[0]), frame(tok[1])})
		}
		v0 = append(v0, [2][]byte{kreq(meta, 2), kresp(metaResp, 2)})
		checkLogin(t, "kafka SASL v0 "+tc.mech, Kafka{}.NewStream, v0, []string{"SaslHandshake", "Metadata orders"})

		hs.Version, hsResp.Version = 1, 1
		v1 := [][2][]byte{{kreq(hs, 1), kresp(hsResp, 1)}}
		for i, tok := range tc.tokens {
			auth := kmsg.NewPtrSASLAuthenticateRequest()
			auth.Version, auth.SASLAuthBytes = 1, []byte(tok[0])
			authResp := kmsg.NewPtrSASLAuthenticateResponse()
			authResp.Version, authResp.SASLAuthBytes = 1, []byte(tok[1])
			v1 = append(v1, [2][]byte{kreq(auth, int32(2+i)), kresp(authResp, int32(2+i))})
		}
		v1 = append(v1, [2][]byte{kreq(meta, 9), kresp(metaResp, 9)})
		want := []string{"SaslHandshake"}
		for range tc.tokens {
			want = append(want, "SaslAuthenticate")
		}
		checkLogin(t, "kafka SASL v1 "+tc.mech, Kafka{}.NewStream, v1, append(want, "Metadata orders"))
	}
}
