package stacktest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Toxiproxy is one Toxiproxy server (deploy/local/toxiproxy, its own
// module), started for a test and driven through its HTTP API: proxies in
// front of the stack's services, and toxics on them (latency, cuts).
type Toxiproxy struct {
	t   testing.TB
	api string
}

var (
	toxiOnce sync.Once
	toxiBin  string
	toxiErr  error
)

// toxiproxyBinary builds the Toxiproxy helper once per test binary.
func toxiproxyBinary(t testing.TB) string {
	t.Helper()
	toxiOnce.Do(func() {
		// One build per test binary, in a directory of its own (go test
		// runs packages' binaries side by side).
		dir, err := os.MkdirTemp("", "wharf-toxiproxy-")
		if err != nil {
			toxiErr = err
			return
		}
		toxiBin = filepath.Join(dir, "toxiproxy")
		c := exec.Command("go", "build", "-o", toxiBin, ".")
		c.Dir = filepath.Join(RepoRoot(), "deploy", "local", "toxiproxy")
		if out, err := c.CombinedOutput(); err != nil {
			toxiErr = fmt.Errorf("build toxiproxy: %v\n%s", err, out)
		}
	})
	if toxiErr != nil {
		t.Fatal(toxiErr)
	}
	return toxiBin
}

// StartToxiproxy starts a Toxiproxy server on loopback, stopped at the end
// of the test.
func StartToxiproxy(t testing.TB) *Toxiproxy {
	t.Helper()
	c := exec.Command(toxiproxyBinary(t), "-listen", "127.0.0.1:0")
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &LockedBuffer{}
	c.Stderr = logs
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Process.Kill()
		c.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("toxiproxy did not start: %q %v\n%s", line, err, logs.String())
	}
	go io.Copy(io.Discard, stdout)
	return &Toxiproxy{t: t, api: "http://" + addr}
}

// Call sends one request to the API and returns the answer's body; an
// error or a status of 300 or more fails the test.
func (tp *Toxiproxy) Call(method, path string, body any) []byte {
	tp.t.Helper()
	var in io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		in = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, tp.api+path, in)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tp.t.Fatalf("toxiproxy %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		tp.t.Fatalf("toxiproxy %s %s: %s: %s", method, path, resp.Status, out)
	}
	return out
}

// Proxy creates a proxy to upstream (host:port) and returns the address it
// listens on.
func (tp *Toxiproxy) Proxy(name, upstream string) string {
	tp.t.Helper()
	var p struct{ Listen string }
	json.Unmarshal(tp.Call("POST", "/proxies", map[string]any{"name": name, "listen": "127.0.0.1:0", "upstream": upstream}), &p)
	if p.Listen == "" {
		tp.t.Fatalf("toxiproxy: no listen address for %s", name)
	}
	return p.Listen
}

// Latency delays every answer through proxy by ms milliseconds, as toxic
// toxic, until RemoveToxic.
func (tp *Toxiproxy) Latency(proxy, toxic string, ms int) {
	tp.t.Helper()
	tp.Call("POST", "/proxies/"+proxy+"/toxics", map[string]any{"name": toxic, "type": "latency", "stream": "downstream",
		"toxicity": 1.0, "attributes": map[string]any{"latency": ms, "jitter": 0}})
}

// RemoveToxic removes a toxic from a proxy.
func (tp *Toxiproxy) RemoveToxic(proxy, toxic string) {
	tp.t.Helper()
	tp.Call("DELETE", "/proxies/"+proxy+"/toxics/"+toxic, nil)
}

// LockedBuffer collects a process's output while a test reads it: exec
// copies a child's output from its own goroutine.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
