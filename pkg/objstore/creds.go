package objstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Credentials sign requests. String and LogValue never show the secret
// key or the session token.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Source          string // where they came from: "environment", a file and profile, "settings"
}

func (c Credentials) String() string {
	if c.AccessKeyID == "" {
		return "no credentials"
	}
	return fmt.Sprintf("access key %s from %s", c.AccessKeyID, c.Source)
}

// LogValue keeps the secrets out of slog output.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", c.AccessKeyID), slog.String("source", c.Source))
}

// ErrNoCredentials means neither the environment nor the shared
// credentials file has an access key.
var ErrNoCredentials = errors.New("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or write ~/.aws/credentials")

// LoadCredentials finds credentials the way the AWS tools do:
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else
// the profile AWS_PROFILE (default "default") of the shared credentials file
// AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials). env is
// os.Getenv in production.
func LoadCredentials(env func(string) string) (Credentials, error) {
	if id, secret := env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"); id != "" || secret != "" {
		if id == "" || secret == "" {
			return Credentials{}, errors.New("reading S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
		}
		return Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: env("AWS_SESSION_TOKEN"), Source: "environment"}, nil
	}
	file := env("AWS_SHARED_CREDENTIALS_FILE")
	if file == "" {
		home := env("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		if home == "" {
			return Credentials{}, ErrNoCredentials
		}
		file = filepath.Join(home, ".aws", "credentials")
	}
	profile := env("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return Credentials{}, ErrNoCredentials
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("reading S3 credentials: %w", err)
	}
	c, err := parseCredentialsFile(b, profile)
	if err != nil {
		return Credentials{}, fmt.Errorf("reading S3 credentials from %s: %w", file, err)
	}
	c.Source = file + " [" + profile + "]"
	return c, nil
}

// parseCredentialsFile reads one profile of an INI-style shared
// credentials file.
func parseCredentialsFile(b []byte, profile string) (Credentials, error) {
	var c Credentials
	found := false
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return c, fmt.Errorf("line %d: unterminated section header", n)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			section = strings.TrimSpace(strings.TrimPrefix(section, "profile "))
			if section == profile {
				found = true
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return c, fmt.Errorf("line %d: want key = value", n)
		}
		if section != profile {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "aws_access_key_id":
			c.AccessKeyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			c.SecretAccessKey = strings.TrimSpace(v)
		case "aws_session_token":
			c.SessionToken = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	if !found {
		return c, fmt.Errorf("no profile %q", profile)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return c, fmt.Errorf("profile %q lacks aws_access_key_id or aws_secret_access_key", profile)
	}
	return c, nil
}
