package chatproxy_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/devchat"
	"github.com/skydm/skydm/internal/testenv"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestSandboxSaysWhichServiceIsNotAnswering drives real failures through
// the sandbox PDS and reads the messages people get: the chat service
// down (a service DID whose endpoint refuses connections; the PDS answers
// for it) or hanging (devchat's hang fault) names Bluesky's chat service;
// the PDS refusing connections or accepting them and never answering names
// "your server" and its host.
func TestSandboxSaysWhichServiceIsNotAnswering(t *testing.T) {
	n := testenv.Network(t)
	acct := testenv.NewAccount(t, n)
	api := testenv.PasswordSession(t, n, acct)
	const chatMsg = "Bluesky's chat service is not answering"

	check := func(t *testing.T, what string, err error, want string) {
		t.Helper()
		e := apperr.As(err)
		if e == nil || e.Code != apperr.Unavailable {
			t.Fatalf("%s: got %v, want Unavailable", what, err)
		}
		t.Logf("%s: %q (cause: %v)", what, e.Message, e.Err)
		if !strings.Contains(e.Message, want) {
			t.Errorf("%s: message %q, want it to contain %q", what, e.Message, want)
		}
	}

	t.Run("chat service refuses connections", func(t *testing.T) {
		dead := closedPort(t)
		doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			did := "did:web:" + url.PathEscape(r.Host)
			json.NewEncoder(w).Encode(map[string]any{
				"@context": []string{"https://www.w3.org/ns/did/v1"}, "id": did,
				"service": []map[string]any{{"id": "#bsky_chat", "type": "BskyChatService", "serviceEndpoint": "http://" + dead}},
			})
		}))
		defer doc.Close()
		_, port, _ := net.SplitHostPort(doc.Listener.Addr().String())
		ref := "did:web:localhost%3A" + port + "#bsky_chat"
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := chatproxy.New(api, ref).ListConvos(ctx, chatproxy.ListConvosParams{})
		check(t, "chat service down", err, chatMsg)
	})

	t.Run("chat service hangs", func(t *testing.T) {
		if err := n.InjectFault(context.Background(), devchat.Fault{Method: "chat.bsky.convo.listConvos", Hang: true, Count: 1}); err != nil {
			t.Fatal(err)
		}
		defer n.ClearFaults(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := chatproxy.New(api, n.ChatServiceRef).ListConvos(ctx, chatproxy.ListConvosParams{})
		check(t, "chat service hangs", err, chatMsg)
	})

	t.Run("PDS refuses connections", func(t *testing.T) {
		dead := closedPort(t)
		down := *api
		down.Host = "http://" + dead
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := chatproxy.New(&down, n.ChatServiceRef).ListConvos(ctx, chatproxy.ListConvosParams{})
		check(t, "PDS down", err, "Your server "+dead+" is not answering")
	})

	t.Run("PDS accepts and never answers", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() { // a frozen PDS: the kernel accepts, nothing answers
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held = append(held, c)
			}
		}()
		frozen := *api
		frozen.Host = "http://" + ln.Addr().String()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = chatproxy.New(&frozen, n.ChatServiceRef).ListConvos(ctx, chatproxy.ListConvosParams{})
		check(t, "PDS frozen", err, "Your server "+ln.Addr().String()+" is not answering")
	})

	t.Run("PDS front answers 502 without XRPC", func(t *testing.T) {
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		}))
		defer front.Close()
		pds := *api
		pds.Host = front.URL
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := chatproxy.New(&pds, n.ChatServiceRef).ListConvos(ctx, chatproxy.ListConvosParams{})
		check(t, "PDS front 502", err, "Your server "+strings.TrimPrefix(front.URL, "http://")+" is not answering")
	})
}
