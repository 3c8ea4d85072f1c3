package objstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials")
	os.WriteFile(file, []byte(`# shared credentials
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secretdefault

[profile ci]
aws_access_key_id=AKIDCI
aws_secret_access_key=secretci
aws_session_token = tokci
[broken]
aws_access_key_id = only
`), 0o600)
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte("[default]\naws_access_key_id=AKIDHOME\naws_secret_access_key=sh\n"), 0o600)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		id, tok string
		err     string
	}{
		{"environment wins", map[string]string{"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "se", "AWS_SESSION_TOKEN": "t",
			"AWS_SHARED_CREDENTIALS_FILE": file}, "AKIDENV", "t", ""},
		{"half the environment", map[string]string{"AWS_ACCESS_KEY_ID": "AKIDENV"}, "", "", "must be set together"},
		{"file default profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file}, "AKIDDEFAULT", "", ""},
		{"file named profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "ci"}, "AKIDCI", "tokci", ""},
		{"profile without secret", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "broken"}, "", "", "lacks"},
		{"missing profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "nope"}, "", "", `no profile "nope"`},
		{"home file", map[string]string{"HOME": home}, "AKIDHOME", "", ""},
		{"nothing", map[string]string{"HOME": t.TempDir()}, "", "", "no S3 credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadCredentials(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || c.AccessKeyID != tc.id || c.SessionToken != tc.tok || c.SecretAccessKey == "" {
				t.Fatalf("got %+v, %v", c, err)
			}
		})
	}
	if _, err := LoadCredentials(func(k string) string { return map[string]string{"HOME": t.TempDir()}[k] }); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("want ErrNoCredentials, got %v", err)
	}
}

func TestCredentialsNeverPrinted(t *testing.T) {
	c := Credentials{AccessKeyID: "AKIDX", SecretAccessKey: "supersecret", SessionToken: "sessiontok", Source: "environment"}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("creds", "c", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v", c, c), b.String()} {
		if strings.Contains(s, "supersecret") || strings.Contains(s, "sessiontok") || !strings.Contains(s, "AKIDX") {
			t.Fatalf("printed form %q", s)
		}
	}
}
