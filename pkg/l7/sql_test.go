package l7

import "testing"

func TestNormalizeSQL(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT * FROM users WHERE id = 42":                   "SELECT * FROM users WHERE id = ?",
		"select  name\n\tfrom t where n='O''Brien' and x=1.5": "select name from t where n=? and x=?",
		"INSERT INTO t2 (a, b) VALUES ('x\\'y', -7)":          "INSERT INTO t2 (a, b) VALUES (?, -?)",
		"SELECT c1 FROM t1 /* hint */ WHERE a = $1 -- tail":   "SELECT c1 FROM t1 WHERE a = $1",
		"UPDATE t SET v = v + 1 WHERE k IN (1, 2, 3)":         "UPDATE t SET v = v + ? WHERE k IN (?, ?, ?)",
		"SELECT 'unterminated":                                "SELECT ?",
		"  ":                                                  "",
	} {
		if got := NormalizeSQL(in); got != want {
			t.Errorf("NormalizeSQL(%q) = %q, want %q", in, got, want)
		}
	}
	RedactSQL = false
	defer func() { RedactSQL = true }()
	if got := NormalizeSQL("SELECT 1  FROM t WHERE a='x'"); got != "SELECT 1 FROM t WHERE a='x'" {
		t.Errorf("without redaction: %q", got)
	}
	for in, want := range map[string]string{"select 1": "SELECT", " (SELECT 1)": "SELECT", "insert into": "INSERT", "": "", "42": ""} {
		if got := SQLVerb(in); got != want {
			t.Errorf("SQLVerb(%q) = %q, want %q", in, got, want)
		}
	}
}
