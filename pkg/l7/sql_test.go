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

// TestRedactSQLError: error messages quoting a statement or a value give
// back no literal; messages quoting identifiers keep them.
func TestRedactSQLError(t *testing.T) {
	for in, want := range map[string]string{
		// MariaDB 1064: the statement from the error on, its inner quotes unescaped.
		"You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'BYY 'S3cret' WITH 1' at line 1": "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'BYY ? WITH ?' at line 1",
		"… to use near 'IDENTIFIED BYY 'S3cr":                                  "… to use near 'IDENTIFIED BYY ?", // cut by MaxPath
		"Duplicate entry 'alice@example.com' for key 'email'":                  "Duplicate entry '?' for key 'email'",
		"Incorrect integer value: 'S3cret' for column `shop`.`t`.`n` at row 1": "Incorrect integer value: '?' for column `shop`.`t`.`n` at row 1",
		"Table 'shop.missing' doesn't exist":                                   "Table 'shop.missing' doesn't exist",
		`syntax error at or near "'S3cret'"`:                                   `syntax error at or near "?"`,
		`syntax error at or near "BYY"`:                                        `syntax error at or near "BYY"`,
		`invalid input syntax for type integer: "S3cret"`:                      `invalid input syntax for type integer: "?"`,
		`invalid input value for enum mood: "S3cret"`:                          `invalid input value for enum mood: "?"`,
		`relation "missing" does not exist`:                                    `relation "missing" does not exist`,
		`password authentication failed for user "alice"`:                      `password authentication failed for user "alice"`,
	} {
		if got := RedactSQLError(in); got != want {
			t.Errorf("RedactSQLError(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}
