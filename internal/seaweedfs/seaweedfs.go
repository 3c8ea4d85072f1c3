//go:build linux

package seaweedfs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/zerotrace/zerotrace/pkg/objstore"
)

// Credentials of the server's one identity.
const (
	AccessKey = "zerotrace-test"
	SecretKey = "zerotrace-test-secret"
)

// Binary finds weed: $ZEROTRACE_WEED, else the newest
// /var/cache/zerotrace/weed-* that .ci/seaweedfs built.
func Binary() (string, error) {
	if p := os.Getenv("ZEROTRACE_WEED"); p != "" {
		return p, nil
	}
	dir := os.Getenv("WEED_CACHE")
	if dir == "" {
		dir = "/var/cache/zerotrace"
	}
	m, _ := filepath.Glob(filepath.Join(dir, "weed-*"))
	var bins []string
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			bins = append(bins, p)
		}
	}
	if len(bins) == 0 {
		return "", errors.New("no weed binary: run bash .ci/seaweedfs (or set ZEROTRACE_WEED)")
	}
	sort.Slice(bins, func(i, j int) bool {
		a, _ := os.Stat(bins[i])
		b, _ := os.Stat(bins[j])
		return a.ModTime().After(b.ModTime())
	})
	return bins[0], nil
}

// Server is one running weed server.
type Server struct {
	Endpoint string // http://127.0.0.1:<s3 port>
	// HTTPSEndpoint serves the same S3 API over TLS with a self-signed
	// certificate for 127.0.0.1, which CAFile holds (PEM).
	HTTPSEndpoint string
	CAFile        string
	Dir           string
	Log           string // the server's output file

	bin     string
	volumes int         // -volume.max: volumes of 64 MB
	keys    [][2]string // access key, secret key: the identity's credentials beyond the first
	ports   [9]int
	cmd     *exec.Cmd
	done    chan struct{}
}

// Launch runs weed from bin with its data, configuration and log in dir,
// on free loopback ports, and waits until it serves; the caller Stops it.
func Launch(bin, dir string) (*Server, error) {
	return LaunchSized(bin, dir, 0)
}

// LaunchSized is Launch for a server that must hold about bytes (its
// volumes are 64 MB each; Launch's 16 hold 1 GB).
func LaunchSized(bin, dir string, bytes int64) (*Server, error) {
	s := &Server{bin: bin, Dir: dir, volumes: int(max(16, bytes>>26+8))}
	s.Log = filepath.Join(s.Dir, "weed.log")
	if err := writeCert(s.Dir); err != nil {
		return nil, err
	}
	s.CAFile = filepath.Join(s.Dir, "cert.pem")
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o755); err != nil {
		return nil, err
	}
	// A port picked free can be taken before weed binds it (tests start
	// servers in parallel): weed then exits at once, and new ports are tried.
	// A fresh weed sometimes never serves ("volume growth is frozen after
	// master state loss" in its log, seen once in ~20 CI runs): it is
	// stopped and started afresh, on new ports and an empty data directory.
	var err error
	stuck := 0
	for try := 0; try < 4; try++ {
		for i := range s.ports {
			p, perr := freePort()
			if perr != nil {
				return nil, perr
			}
			s.ports[i] = p
		}
		s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", s.ports[0])
		s.HTTPSEndpoint = fmt.Sprintf("https://127.0.0.1:%d", s.ports[8])
		err = s.Restart()
		if errors.Is(err, errNotReady) && stuck == 0 {
			stuck++
			if rerr := os.RemoveAll(filepath.Join(s.Dir, "data")); rerr != nil {
				return s, rerr
			}
			if rerr := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o755); rerr != nil {
				return s, rerr
			}
			os.Rename(s.Log, s.Log+".stuck") // kept for a look; the new run logs afresh
			continue
		}
		if !errors.Is(err, errExited) {
			break
		}
	}
	return s, err
}

// writeConfig writes the S3 identity (s3.json): AccessKey with SecretKey,
// and the credentials AddCredentials gave it.
func (s *Server) writeConfig() error {
	creds := []any{map[string]string{"accessKey": AccessKey, "secretKey": SecretKey}}
	for _, k := range s.keys {
		creds = append(creds, map[string]string{"accessKey": k[0], "secretKey": k[1]})
	}
	cfg, _ := json.Marshal(map[string]any{"identities": []any{map[string]any{
		"name":        "zerotrace",
		"credentials": creds,
		"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}})
	return os.WriteFile(filepath.Join(s.Dir, "s3.json"), cfg, 0o600)
}

// AddCredentials lets the identity sign with one more key pair from the
// next Restart on (a refused key becoming valid, as when an operator adds
// it).
func (s *Server) AddCredentials(accessKey, secretKey string) error {
	s.keys = append(s.keys, [2]string{accessKey, secretKey})
	return s.writeConfig()
}

var (
	errExited   = errors.New("weed exited")
	errNotReady = errors.New("weed not ready")
)

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Restart starts the server (again, after Stop) on the same ports and data
// directory and waits until it serves S3 requests.
func (s *Server) Restart() error {
	if s.cmd != nil {
		return errors.New("seaweedfs: already running")
	}
	p := s.ports
	args := []string{"server", "-dir=" + filepath.Join(s.Dir, "data"), "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + strconv.Itoa(p[1]), "-master.port.grpc=" + strconv.Itoa(p[2]),
		"-volume.port=" + strconv.Itoa(p[3]), "-volume.port.grpc=" + strconv.Itoa(p[4]),
		"-filer", "-filer.port=" + strconv.Itoa(p[5]), "-filer.port.grpc=" + strconv.Itoa(p[6]),
		"-s3", "-s3.port=" + strconv.Itoa(p[0]), "-s3.port.grpc=" + strconv.Itoa(p[7]),
		"-s3.port.https=" + strconv.Itoa(p[8]), "-s3.cert.file=" + filepath.Join(s.Dir, "cert.pem"),
		"-s3.key.file=" + filepath.Join(s.Dir, "key.pem"),
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=" + filepath.Join(s.Dir, "s3.json"),
		"-master.volumeSizeLimitMB=64", "-volume.max=" + strconv.Itoa(s.volumes), "-volume.preStopSeconds=0",
		// One master: no resumed raft state and a short election, so a restart serves within seconds.
		"-master.resumeState=false", "-master.electionTimeout=1s"}
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting weed: %w", err)
	}
	logf.Close()
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	// Ready when a bucket can be created and an object written (volumes
	// registered with the master).
	c := s.client("ready-check")
	deadline := time.Now().Add(readyWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = c.CreateBucket(ctx)
		if err == nil {
			err = c.PutBytes(ctx, "ready", []byte("ready"))
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			s.cmd = nil
			b, _ := os.ReadFile(s.Log)
			return fmt.Errorf("%w: %s", errExited, tail(b))
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			b, _ := os.ReadFile(s.Log)
			return fmt.Errorf("%w after %s (%v): %s", errNotReady, readyWait, err, tail(b))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readyWait bounds a start: weed serves within ~5–15 s here, ~30 s when
// the machine is saturated by parallel test packages.
const readyWait = 45 * time.Second

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop ends the server with SIGTERM, SIGKILL 3 s later if it is still
// there (weed's shutdown can hang on its own master's raft), and waits for
// the process to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

func (s *Server) client(bucket string) *objstore.Client {
	c, err := objstore.New(s.Config(bucket))
	if err != nil {
		panic(err)
	}
	return c
}

// Config is the objstore configuration of bucket on this server.
func (s *Server) Config(bucket string) objstore.Config {
	return objstore.Config{Bucket: bucket, Endpoint: s.Endpoint, PathStyle: true, Timeout: 10 * time.Second,
		Credentials: objstore.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey, Source: "test"}}
}

// writeCert writes a self-signed certificate for 127.0.0.1 (cert.pem, also
// the CA to trust) and its key (key.pem) into dir.
func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
}
