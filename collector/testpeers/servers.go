package testpeers

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Server is a database server started for a test.
type Server struct {
	cmd *exec.Cmd
	Dir string // its data and socket directory
}

// Stop kills the server and waits for it.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// inNetns prefixes argv to run inside the named network namespace.
func inNetns(ns string, argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
}

// StartMariaDB initialises a data directory under dir and runs mariadbd in
// ns on ip:3306 without grant tables, returning once it answers on its
// socket.
func StartMariaDB(dir, ns, ip string) (*Server, error) { return startMariaDB(dir, ns, ip, "", "") }

// StartMariaDBAuth runs mariadbd like StartMariaDB but with grant tables,
// and a login of any host who logs in with password and may do anything.
func StartMariaDBAuth(dir, ns, ip, login, password string) (*Server, error) {
	return startMariaDB(dir, ns, ip, login, password)
}

func startMariaDB(dir, ns, ip, login, password string) (*Server, error) {
	for _, b := range []string{"mariadbd", "mariadb-install-db", "mariadb"} {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("needs %s (mariadb-server, mariadb-client): %w", b, err)
		}
	}
	if out, err := exec.Command("mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+dir+"/data",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	args := []string{"mariadbd", "--no-defaults", "--user=root", "--datadir=" + dir + "/data", "--socket=" + dir + "/sock",
		"--pid-file=" + dir + "/pid", "--bind-address=" + ip, "--port=3306", "--log-error=" + dir + "/err.log",
		"--skip-name-resolve", "--innodb-buffer-pool-size=16M"}
	if login == "" {
		args = append(args, "--skip-grant-tables")
	}
	cmd := inNetns(ns, args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting mariadbd: %w", err)
	}
	s := &Server{cmd: cmd, Dir: dir}
	root := func(stdin string) error {
		c := exec.Command("mariadb", "--no-defaults", "-S", dir+"/sock", "-u", "root")
		c.Stdin = strings.NewReader(stdin)
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	if err := s.wait(func() error { return root("SELECT 1") }, filepath.Join(dir, "err.log")); err != nil || login == "" {
		return s, err
	}
	// The password on stdin, over the socket: in no command line, on no traced connection.
	if err := root(fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO '%s'@'%%';", login, password, login)); err != nil {
		s.Stop()
		return nil, fmt.Errorf("creating user %s: %w", login, err)
	}
	return s, nil
}

// PostgresBin finds a PostgreSQL server program (PATH, then the Debian
// versioned directory).
func PostgresBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(m) == 0 {
		return "", fmt.Errorf("needs %s (postgresql)", name)
	}
	return m[len(m)-1], nil
}

// StartPostgres initialises a cluster under dir (trust authentication,
// superuser postgres) and runs postgres as the postgres user in ns on
// ip:5432, returning once it answers.
func StartPostgres(dir, ns, ip string) (*Server, error) { return startPostgres(dir, ns, ip, "", "") }

// StartPostgresAuth runs postgres like StartPostgres, with a login role
// login that connects over TCP with its password, sent in clear text
// (authentication method "password").
func StartPostgresAuth(dir, ns, ip, login, password string) (*Server, error) {
	return startPostgres(dir, ns, ip, login, password)
}

func startPostgres(dir, ns, ip, login, password string) (*Server, error) {
	initdb, err := PostgresBin("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := PostgresBin("postgres")
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("psql"); err != nil {
		return nil, fmt.Errorf("needs psql (postgresql-client): %w", err)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("needs the postgres user (postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	data := filepath.Join(dir, "data")
	for _, d := range []string{dir, data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return nil, err
		}
	}
	os.Chmod(filepath.Dir(dir), 0o755)
	if out, err := exec.Command("runuser", "-u", "postgres", "--", initdb, "-D", data, "-A", "trust", "-U", "postgres",
		"--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if login != "" {
		fmt.Fprintf(hba, "host all %s 0.0.0.0/0 password\n", login)
	}
	fmt.Fprintln(hba, "host all all 0.0.0.0/0 trust")
	hba.Close()
	cmd := inNetns(ns, "runuser", "-u", "postgres", "--", postgres, "-D", data, "-k", dir, "-h", ip, "-p", "5432",
		"-c", "fsync=off", "-c", "logging_collector=off", "-c", "shared_buffers=16MB")
	log, _ := os.Create(filepath.Join(dir, "server.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	s := &Server{cmd: cmd, Dir: dir}
	err = s.wait(func() error {
		return inNetns(ns, "psql", "-h", ip, "-p", "5432", "-U", "postgres", "-d", "postgres", "-Atc", "SELECT 1").Run()
	}, filepath.Join(dir, "server.log"))
	if err != nil || login == "" {
		return s, err
	}
	// The password on stdin, over the Unix socket: in no command line, on no traced connection.
	c := exec.Command("runuser", "-u", "postgres", "--", "psql", "-h", dir, "-p", "5432", "-d", "postgres", "-v", "ON_ERROR_STOP=1")
	c.Stdin = strings.NewReader(fmt.Sprintf("CREATE ROLE %s LOGIN SUPERUSER PASSWORD '%s';\n", login, password))
	if out, err := c.CombinedOutput(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("creating role %s: %w\n%s", login, err, out)
	}
	return s, nil
}

func (s *Server) wait(ready func() error, logFile string) error {
	var err error
	for i := 0; i < 300; i++ {
		if err = ready(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop()
	log, _ := os.ReadFile(logFile)
	return fmt.Errorf("server not ready after 30 s: %w\n%s", err, log)
}
