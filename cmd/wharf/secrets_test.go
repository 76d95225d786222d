package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/secret"
	"github.com/wharfdata/wharf/internal/stacktest"
)

// secretForms and scrubWriter, as the status page's tests call them.
var secretForms = secret.Forms

type scrubWriter struct {
	w       io.Writer
	secrets []string
}

func (s scrubWriter) Write(p []byte) (int, error) {
	return secret.Writer{W: s.w, Secrets: s.secrets}.Write(p)
}

// Fake credentials, each with a distinctive prefix so that a partial leak
// shows too.
const (
	leakDSNPassword   = "WhDsnPw-9f2@k"
	leakKwPassword    = "WhKw Pw-3"
	leakMongoPassword = "WhMongoPw-77"
	leakAWSKeyID      = "AKIAWHARFTESTKEY0001"
	leakAWSSecret     = "WhAwsSecret/Key+123"
	leakAWSToken      = "WhAwsSessionToken-55"
)

var leakMarks = []string{"WhDsnPw", "9f2%40k", "9f2@k", "WhKw", "Kw Pw", "WhMongoPw", "AKIAWHARFTESTKEY", "WhAwsSecret", "Key+123", "Key%2B123", "WhAwsSessionToken"}

func checkNoLeak(t *testing.T, what, out string) {
	t.Helper()
	for _, m := range leakMarks {
		if strings.Contains(out, m) {
			i := strings.Index(out, m)
			t.Errorf("%s: %q leaked: …%s…", what, m, out[max(0, i-200):min(len(out), i+100)])
		}
	}
}

// cleanEnv returns the process environment without WHARF_*, AWS_* and PG*
// variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WHARF_") || strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func urlDSN(host, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("wharf", password), Host: host, Path: "/db", RawQuery: "connect_timeout=1&sslmode=disable"}
	return u.String()
}

// A warehouse DSN with a password and AWS keys, given through the config
// file, the environment and a shared credentials file, never appear in what
// the real binary prints, at debug level, while it fails against endpoints
// that refuse connections: in its logs, its errors and its exit message.
func TestSecretsNeverPrinted(t *testing.T) {
	wharf, _ := binaries(t)
	dir := t.TempDir()
	writeFile(t, dir, "tables.yaml", okTables)
	awsEnv := []string{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=http://127.0.0.1:1", "AWS_MAX_ATTEMPTS=2", "AWS_EC2_METADATA_DISABLED=true",
		"WHARF_LOG_LEVEL=debug", "WHARF_LOG_FORMAT=json"}
	awsKeys := []string{"AWS_ACCESS_KEY_ID=" + leakAWSKeyID, "AWS_SECRET_ACCESS_KEY=" + leakAWSSecret, "AWS_SESSION_TOKEN=" + leakAWSToken}
	credFile := writeFile(t, dir, "credentials", "[wharf]\naws_access_key_id = "+leakAWSKeyID+"\naws_secret_access_key = "+leakAWSSecret+"\naws_session_token = "+leakAWSToken+"\n")
	kwDSN := "host=127.0.0.1 port=1 user=wharf password='" + leakKwPassword + "' dbname=db connect_timeout=1 sslmode=disable"
	mongoURI := "mongodb://wharf:" + leakMongoPassword + "@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
	base := "sqs: {queue_url: 'http://127.0.0.1:1/000000000000/q', wait_time: 1s}\ns3: {bucket: b, path_style: true}\nschema: tables.yaml\n"

	cases := []struct {
		name string
		yaml string
		env  []string
		args []string
		code int
		want string // in the output: the failure it reports
	}{
		{"serve: DSN and Mongo URI in the file, AWS keys in the environment", base + "warehouse: {dialect: postgres, dsn: '" + urlDSN("127.0.0.1:1", leakDSNPassword) + "'}\nmongo: {uri: '" + mongoURI + "', database: d}\n",
			awsKeys, []string{"serve", "--http", ""}, 1, "mongo"},
		{"serve: keyword DSN in the environment, no Mongo", base + "warehouse: {dialect: postgres}\n",
			append([]string{"WHARF_WAREHOUSE_DSN=" + kwDSN}, awsKeys...), []string{"serve", "--http", ""}, 1, "visibility timeout"},
		{"serve: AWS keys from a shared credentials file", base + "warehouse: {dialect: postgres, dsn: '" + urlDSN("127.0.0.1:1", leakDSNPassword) + "'}\n",
			[]string{"AWS_SHARED_CREDENTIALS_FILE=" + credFile, "AWS_PROFILE=wharf", "AWS_CONFIG_FILE=" + filepath.Join(dir, "none")}, []string{"serve", "--http", ""}, 1, "visibility timeout"},
		{"load: URL DSN in the environment", base + "warehouse: {dialect: postgres}\n",
			append([]string{"WHARF_WAREHOUSE_DSN=" + urlDSN("127.0.0.1:1", leakDSNPassword)}, awsKeys...), []string{"load"}, 1, "127.0.0.1"},
		{"schema apply: a DSN that does not parse", base + "warehouse: {dialect: postgres, dsn: 'postgres://wharf:" + url.PathEscape(leakDSNPassword) + "@127.0.0.1:notaport/db'}\n",
			awsKeys, []string{"schema", "apply"}, 2, "warehouse.dsn"},
		{"serve: a Mongo URI that does not parse", base + "warehouse: {dialect: postgres, dsn: '" + urlDSN("127.0.0.1:1", leakDSNPassword) + "'}\nmongo: {uri: 'mongodb://wharf:" + leakMongoPassword + "@127.0.0.1:1/?connectTimeoutMS=soon', database: d}\n",
			awsKeys, []string{"serve", "--http", ""}, 2, "mongo.uri"},
		{"deadletter replay: S3 refuses", base + "warehouse: {dialect: postgres, dsn: '" + urlDSN("127.0.0.1:1", leakDSNPassword) + "'}\n",
			awsKeys, []string{"deadletter", "replay"}, 1, "127.0.0.1:1"},
		{"send: SQS refuses", base, awsKeys, []string{"send"}, 1, "127.0.0.1:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeFile(t, dir, "wharf.yaml", c.yaml)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, wharf, append([]string{c.args[0]}, append(c.args[1:], "-c", cfg)...)...)
			cmd.Env = cleanEnv(append(append([]string{}, awsEnv...), c.env...)...)
			cmd.Stdin = strings.NewReader(`{"event":"t","id":"1","a":1}` + "\n")
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(string(out), c.want) {
				t.Errorf("exit %d, want %d with %q in:\n%s", code, c.code, c.want, tail(string(out), 3000))
			}
			t.Logf("exit %d, output:\n%s", cmd.ProcessState.ExitCode(), tail(string(out), 1500))
			checkNoLeak(t, c.name, string(out))
		})
	}
}

// The same secrets in a running serve on the local stack, with the
// warehouse refusing connections so that the loader logs an error every
// interval: not in the logs, /status (HTML and JSON), /metrics or /healthz.
func TestSecretsNotInStatusOrLogs(t *testing.T) {
	e := newE2E(t)
	p := e.serveHTTP("WHARF_WAREHOUSE_DSN="+urlDSN("127.0.0.1:1", leakDSNPassword), "WHARF_LOG_LEVEL=debug",
		"AWS_ACCESS_KEY_ID="+leakAWSKeyID, "AWS_SECRET_ACCESS_KEY="+leakAWSSecret, "AWS_SESSION_TOKEN="+leakAWSToken)
	e.run([]byte(`{"event":"page_view","id":"s1","user_id":1}`+"\n"), "send", "-c", e.cfg)
	stacktest.Eventually(t, "a failed load in the log", time.Minute, func() bool {
		return strings.Contains(p.logs.String(), "127.0.0.1:1") && strings.Contains(p.logs.String(), `"level":"warn"`)
	})
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(p.base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	// The pages are read once the failure (which quotes the DSN) is on
	// /status, among its recent errors.
	stacktest.Eventually(t, "the failed load on /status", time.Minute, func() bool {
		_, body := get("/status?format=json")
		return strings.Contains(body, "127.0.0.1:1")
	})
	for _, path := range []string{"/status", "/status?format=json", "/metrics", "/healthz"} {
		resp, body := get(path)
		checkNoLeak(t, path, body)
		if path == "/healthz" && resp.StatusCode != http.StatusOK {
			// A warehouse that refuses connections is not a stalled loader.
			t.Errorf("/healthz with the warehouse down: %s %q, want 200", resp.Status, body)
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop")
	}
	checkNoLeak(t, "serve log", p.logs.String())
}

// Every log line goes through scrub: an error that quotes the DSN, or a
// field holding a key, prints without the secrets of the configuration and
// the environment, as written, URL-escaped or JSON-escaped.
func TestLoggerScrubsSecrets(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "wharf.yaml", "warehouse: {dsn: '"+urlDSN("h:5432", leakDSNPassword)+"'}\nmongo: {uri: 'mongodb://u:"+leakMongoPassword+"@h/'}\nlog: {format: json}\n")
	c, err := loadConfig(cfg, envOf(map[string]string{"AWS_SECRET_ACCESS_KEY": leakAWSSecret, "AWS_SESSION_TOKEN": leakAWSToken}))
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	log := newLogger(c, &buf)
	log.Warn("connect failed",
		zap.Error(fmt.Errorf("dial %s (password %s, decoded %q): refused", c.Warehouse.DSN, leakDSNPassword, leakDSNPassword)),
		zap.String("mongo", "auth with "+leakMongoPassword+" failed"),
		zap.String("aws", "key "+leakAWSSecret+" escaped "+url.QueryEscape(leakAWSSecret)+" token "+leakAWSToken))
	out := buf.String()
	if !strings.Contains(out, "connect failed") || !strings.Contains(out, "h:5432") {
		t.Fatalf("log line lost: %s", out)
	}
	checkNoLeak(t, "log line", out)
}
