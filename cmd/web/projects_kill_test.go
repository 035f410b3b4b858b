package main

import (
	"context"
	"github.com/skydm/skydm/internal/safebuf"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/devchat"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// webProcess is cmd/web running as a child process.
type webProcess struct {
	cmd    *exec.Cmd
	base   string
	stderr *safebuf.Buffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, set before done is closed
}

// startWeb starts the web binary with env and waits for its listening line.
func startWeb(t *testing.T, bin string, env map[string]string) *webProcess {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, stderr := &safebuf.Buffer{}, &safebuf.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &webProcess{cmd: cmd, stderr: stderr, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Signal(syscall.SIGTERM) // our own child, by its pid: a clean stop
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-p.done
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(stdout.String()); m != nil {
			p.base = m[1]
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("web exited early: %v\nstderr:\n%s", p.err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("web printed no listening line within 20s\nstderr:\n%s", stderr.String())
	return nil
}

// TestKilledMidDeliveryAndRestartedSendsExactlyOneDM: the web process is
// SIGKILLed while devchat holds its sendMessage open; restarted on the same
// database, it delivers the DM once the dead process's lease has expired,
// after checking the conversation for the delivery marker, and bob ends up
// with exactly one DM.
func TestKilledMidDeliveryAndRestartedSendsExactlyOneDM(t *testing.T) {
	n := testenv.Network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const send = "chat.bsky.convo.sendMessage"
	t.Cleanup(func() { n.ClearFaults(context.Background()) })

	bob, alice := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	bobAPI := testenv.PasswordSession(t, n, bob)
	if err := sandbox.Follow(ctx, bobAPI, alice.DID); err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(t.TempDir(), "web")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := sandboxEnv(t, n)
	env["SKYDM_OUTBOX_LEASE"] = "30s" // the shortest lease: a crashed delivery is retried 30 s later
	web := startWeb(t, bin, env)
	bobB, aliceB := newBrowserClient(t, web.base), newBrowserClient(t, web.base)
	signInHTTP(t, bobB, bob)
	signInHTTP(t, aliceB, alice)
	projectPath := postRedirect(t, bobB, "/projects", url.Values{"name": {"Widgets"}})

	// sendMessage now hangs: the first process will be killed inside it.
	calls0, err := n.Calls(ctx, send)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.InjectFault(ctx, devchat.Fault{Method: send, Hang: true}); err != nil {
		t.Fatal(err)
	}
	crPath := postRedirect(t, aliceB, projectPath+"/change-requests", url.Values{"title": {"Faster widgets"}, "body": {"Please."}})
	link := web.base + crPath
	waitFor(t, "sendMessage to reach devchat", deliveryDeadline, func() bool {
		c, err := n.Calls(ctx, send)
		return err == nil && c > calls0
	})
	if state, _ := deliveryState(t, aliceB, link); state != "sending" {
		t.Errorf("before the kill the page says %q, want sending", state)
	}
	if err := web.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	<-web.done
	if web.err == nil || !strings.Contains(web.err.Error(), "killed") {
		t.Fatalf("web exited with %v, want killed", web.err)
	}
	if err := n.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	const getMessages = "chat.bsky.convo.getMessages"
	lookups0, err := n.Calls(ctx, getMessages)
	if err != nil {
		t.Fatal(err)
	}

	// Restart on the same database and port (the loopback client id names the port).
	env["SKYDM_ADDR"] = strings.TrimPrefix(web.base, "http://")
	web2 := startWeb(t, bin, env)
	if web2.base != web.base {
		t.Fatalf("restarted at %s, want %s", web2.base, web.base)
	}
	aliceB.base = web2.base
	var state string
	waitFor(t, "the DM to be marked sent after the restart", 90*time.Second, func() bool {
		state, _ = deliveryState(t, aliceB, link)
		return state == "sent"
	})
	t.Logf("sent %s after the kill (lease 30s)", time.Since(killedAt).Round(100*time.Millisecond))
	// The restarted worker looked for the marker before sending again.
	if lookups, _ := n.Calls(ctx, getMessages); lookups <= lookups0 {
		t.Errorf("no getMessages call (marker check) before the resend")
	}

	rkey := crPath[strings.LastIndex(crPath, "/")+1:]
	cols, _ := projects.CollectionsFor("")
	uri := syntax.ATURI("at://" + alice.DID + "/" + cols.ChangeRequest.String() + "/" + rkey)
	marker := notify.DeliveryMarker(uri, syntax.DID(bob.DID))
	dms, _, err := dmsFrom(ctx, chatproxy.New(bobAPI, n.ChatServiceRef), alice.DID, marker)
	if err != nil {
		t.Fatal(err)
	}
	if len(dms) != 1 {
		t.Fatalf("bob has %d DMs with the marker %s, want exactly 1", len(dms), marker)
	}
	calls, _ := n.Calls(ctx, send)
	t.Logf("sendMessage calls: %d (1 hung and killed, then the delivery); DMs with the marker: %d", calls-calls0, len(dms))
	if !strings.Contains(dms[0].Message.Text, link) {
		t.Errorf("DM %q does not link %s", dms[0].Message.Text, link)
	}
	res, _ := bobB.get(web2.base + "/healthz")
	if res.StatusCode != http.StatusOK {
		t.Errorf("healthz after restart: %d", res.StatusCode)
	}
}
