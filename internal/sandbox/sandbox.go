// Package sandbox runs skydm's local atproto network: an in-memory PLC
// directory and a dev-mode PDS (Node, sandbox/start.mjs) on 127.0.0.1, plus
// the devchat chat service in-process. It is used by `make sandbox`
// (cmd/sandbox) and by tests (internal/testenv).
//
// Everything binds to 127.0.0.1 and is reached as http://localhost:PORT (the
// PDS insists on that origin). The PDS additionally resolves
// client.skydm.internal to 127.0.0.1 and trusts a throw-away CA, so a test can
// serve an https client_id for a confidential OAuth client from Go with
// [Network.TLSCert].
package sandbox

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/skydm/skydm/internal/atid"
	"github.com/skydm/skydm/internal/devchat"
)

// ClientHost is the host name the sandbox PDS (and only it) resolves to
// 127.0.0.1, for an https client_id served by a test.
const ClientHost = "client.skydm.internal"

// DefaultStartTimeout bounds Start when its context has no deadline. A cold
// install (Node download and npm ci) alone takes about two minutes.
const DefaultStartTimeout = 5 * time.Minute

// ErrPortInUse is wrapped by Start's error when a requested port on 127.0.0.1
// is already taken.
var ErrPortInUse = errors.New("sandbox: port already in use")

// Options configures Start.
type Options struct {
	RepoDir                    string       // repo root ("" → found by walking up from the working directory to go.mod)
	PLCPort, PDSPort, ChatPort int          // 0 → a free loopback port
	Faults                     bool         // devchat fault injection
	StateFile                  string       // where to write the machine-readable state ("" → none)
	Log                        io.Writer    // node stdout/stderr (nil → discarded; the stderr tail is kept for errors)
	Logger                     *slog.Logger // sandbox and devchat logs (nil → discarded)
	SeedDemo                   bool         // create alice.test, bob.test, carol.test and dave.test
	// AccessTokenTTL shortens the lifetime of OAuth access tokens the PDS
	// issues (0 → the provider's default, 60 minutes; must exceed 250ms), for
	// "access token expired → refresh" tests. Applied by start.mjs through
	// SANDBOX_ACCESS_TOKEN_TTL.
	AccessTokenTTL time.Duration
}

// Account is a sandbox account and its login.
type Account struct {
	Handle   string `json:"handle"`
	DID      string `json:"did"`
	Password string `json:"password"`
	Email    string `json:"email"`
}

// Network is a running sandbox, started by Start or attached to by Load.
type Network struct {
	PLCURL, PDSURL, ChatURL string             // http://localhost:PORT
	Chat                    *devchat.Server    // in-process devchat (nil when attached from a state file)
	ChatDID                 string             // "did:web:localhost%3APORT"
	ChatServiceRef          string             // "did:web:localhost%3APORT#bsky_chat", for the atproto-proxy header
	ReportServiceRef        string             // "did:web:localhost%3APORT#atproto_labeler": devchat takes createReport
	Accounts                map[string]Account // "alice", "bob", "carol", "dave" when seeded
	CACertFile              string             // throw-away CA the PDS trusts (NODE_EXTRA_CA_CERTS)
	ClientHost              string             // "client.skydm.internal", resolved to 127.0.0.1 inside the PDS only
	Faults                  bool               // devchat fault injection is on
	PID                     int                // the node process (PLC + PDS); its process group is killed by Close
	AccessTokenTTL          time.Duration      // OAuth access token lifetime the PDS was started with (0 → default)

	caKeyFile string
	client    *http.Client

	// set only when this process started the network
	owned     bool
	node      *nodeProc
	chatSrv   *http.Server
	dataDir   string
	stateFile string
	closeOnce sync.Once
	closeErr  error
}

// Start installs the sandbox's Node packages if needed (sandbox/install.sh),
// starts the PLC and PDS, starts devchat in-process, optionally seeds the demo
// accounts and writes the state file. It returns an error wrapping
// ErrPortInUse when a requested port is taken, ErrNodeUnavailable when Node
// cannot be installed, and otherwise an error carrying the tail of node's
// stderr. Nothing is left running when it fails.
func Start(ctx context.Context, o Options) (_ *Network, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var log io.Writer = io.Discard
	if o.Log != nil {
		log = &syncWriter{w: o.Log}
	}
	if o.AccessTokenTTL != 0 && o.AccessTokenTTL <= 250*time.Millisecond {
		return nil, fmt.Errorf("sandbox: AccessTokenTTL %v must exceed 250ms", o.AccessTokenTTL)
	}
	repo := o.RepoDir
	if repo == "" {
		if repo, err = FindRepo(); err != nil {
			return nil, err
		}
	}
	sandboxDir := filepath.Join(repo, "sandbox")
	if _, err := os.Stat(filepath.Join(sandboxDir, "start.mjs")); err != nil {
		return nil, fmt.Errorf("sandbox: %s has no start.mjs: %w", sandboxDir, err)
	}

	nodeBin, err := install(ctx, sandboxDir, log)
	if err != nil {
		return nil, err
	}

	// Ports: hold the chat listener for good; check the node ports are free.
	chatLn, err := listenLoopback(o.ChatPort, "chat")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			chatLn.Close()
		}
	}()
	chatPort := chatLn.Addr().(*net.TCPAddr).Port

	dataDir, err := os.MkdirTemp("", "skydm-sandbox-")
	if err != nil {
		return nil, err
	}
	n := &Network{
		ClientHost:     ClientHost,
		Faults:         o.Faults,
		AccessTokenTTL: o.AccessTokenTTL,
		Accounts:       map[string]Account{},
		client:         &http.Client{Timeout: 30 * time.Second},
		owned:          true,
		dataDir:        dataDir,
	}
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()

	// A port picked here (0 in Options) is released just before node binds
	// it, so another process may take it meanwhile: then pick again.
	t0 := time.Now()
	var node *nodeProc
	var ready readyLine
	for attempt := 1; ; attempt++ {
		plcPort, pdsPort, perr := nodePorts(o.PLCPort, o.PDSPort)
		if perr != nil {
			return nil, perr
		}
		// start.mjs removes the whole directory when it stops, also after a
		// failed start, so (re)create it and the CA for every attempt.
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, err
		}
		if _, n.CACertFile, n.caKeyFile, err = newCA(dataDir, time.Now()); err != nil {
			return nil, fmt.Errorf("sandbox: creating the test CA: %w", err)
		}
		env := []string{
			"HOSTS_OVERRIDE=" + ClientHost + "=127.0.0.1",
			"NODE_EXTRA_CA_CERTS=" + n.CACertFile,
		}
		if o.AccessTokenTTL > 0 {
			env = append(env, "SANDBOX_ACCESS_TOKEN_TTL="+strconv.FormatInt(o.AccessTokenTTL.Milliseconds(), 10)+"ms")
		}
		node, ready, err = startNode(ctx, nodeConfig{
			nodeBin: nodeBin, sandboxDir: sandboxDir, dataDir: dataDir,
			plcPort: plcPort, pdsPort: pdsPort, env: env, log: log,
		})
		if err == nil {
			break
		}
		picked := (ready.Port == plcPort && o.PLCPort == 0) || (ready.Port == pdsPort && o.PDSPort == 0)
		if !errors.Is(err, ErrPortInUse) || !picked || attempt == 3 {
			return nil, err
		}
		logger.Warn("sandbox: a picked port was taken before node bound it; picking again", "port", ready.Port)
	}
	n.node = node
	n.PID = node.cmd.Process.Pid
	n.PLCURL, n.PDSURL = ready.PLCURL, ready.PDSURL
	logger.Info("sandbox PDS ready", "pds", n.PDSURL, "plc", n.PLCURL, "pid", n.PID, "ms", time.Since(t0).Milliseconds(), "rssMB", ready.RSSMB)

	// devchat, in-process
	n.ChatURL = "http://localhost:" + strconv.Itoa(chatPort)
	chat, err := devchat.New(devchat.Config{
		Endpoint:   n.ChatURL,
		Directory:  atid.NewSandbox(n.PLCURL, n.PDSURL, n.client),
		HTTPClient: n.client,
		Faults:     o.Faults,
		Logger:     logger.With("component", "devchat"),
		Now:        time.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("sandbox: devchat: %w", err)
	}
	n.Chat = chat
	n.ChatDID = chat.DID().String()
	n.ChatServiceRef = chat.ServiceRef()
	n.ReportServiceRef = chat.LabelerServiceRef()
	n.chatSrv = &http.Server{Handler: chat, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := n.chatSrv.Serve(chatLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("devchat server stopped", "err", err)
		}
	}()
	if err := n.Ping(ctx); err != nil {
		return nil, err
	}

	if o.SeedDemo {
		if err := n.seedDemo(ctx); err != nil {
			return nil, fmt.Errorf("sandbox: seeding demo accounts: %w", err)
		}
	}
	if o.StateFile != "" {
		if err := n.writeState(o.StateFile); err != nil {
			return nil, err
		}
		n.stateFile = o.StateFile
	}
	return n, nil
}

// Close stops a network this process started: SIGTERM to node's process
// group (SIGKILL after 10s), devchat shut down, data directory and state file
// removed. On a network attached with Load it does nothing. It is safe to call
// more than once and returns the first call's error.
func (n *Network) Close() error {
	if !n.owned {
		return nil
	}
	n.closeOnce.Do(func() {
		var errs []error
		if n.chatSrv != nil {
			if n.Chat != nil {
				_ = n.Chat.Close() // release calls held by Hang faults
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := n.chatSrv.Shutdown(ctx); err != nil {
				errs = append(errs, err, n.chatSrv.Close())
			}
			cancel()
		}
		if n.node != nil {
			errs = append(errs, n.node.stop(10*time.Second))
		}
		if n.dataDir != "" {
			errs = append(errs, os.RemoveAll(n.dataDir))
		}
		if n.stateFile != "" {
			if err := os.Remove(n.stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// TLSCert returns a server certificate for hosts (default: ClientHost) signed
// by the CA the sandbox PDS trusts. It fails when the CA files are gone (the
// network was closed) or hosts are unusable.
func (n *Network) TLSCert(hosts ...string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		hosts = []string{n.ClientHost}
	}
	ca, err := loadCA(n.CACertFile, n.caKeyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sandbox: loading the test CA: %w", err)
	}
	return ca.leaf(hosts, time.Now())
}

// Ping checks that the PDS and the chat service answer. It returns an error
// naming the one that does not.
func (n *Network) Ping(ctx context.Context) error {
	for _, u := range []string{n.PDSURL + "/xrpc/_health", n.ChatURL + "/.well-known/did.json"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := n.client.Do(req)
		if err != nil {
			return fmt.Errorf("sandbox: %s: %w", u, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("sandbox: %s: HTTP %d", u, resp.StatusCode)
		}
	}
	return nil
}

// HTTPClient returns the client the network uses for its own calls (30s
// timeout, loopback only by construction of the URLs it is given).
func (n *Network) HTTPClient() *http.Client { return n.client }

// state is the JSON state file.
type state struct {
	PLCURL         string             `json:"plcUrl"`
	PDSURL         string             `json:"pdsUrl"`
	ChatURL        string             `json:"chatUrl"`
	ChatDID        string             `json:"chatDid"`
	ChatServiceRef string             `json:"chatServiceRef"`
	ReportService  string             `json:"reportServiceRef,omitempty"`
	CACertFile     string             `json:"caCertFile"`
	CAKeyFile      string             `json:"caKeyFile"`
	ClientHost     string             `json:"clientHost"`
	Faults         bool               `json:"faults"`
	FaultsURL      string             `json:"faultsUrl,omitempty"`
	PID            int                `json:"pid"`
	AccessTokenTTL string             `json:"accessTokenTtl,omitempty"`
	Accounts       map[string]Account `json:"accounts"`
}

func (n *Network) writeState(path string) error {
	s := state{
		PLCURL: n.PLCURL, PDSURL: n.PDSURL, ChatURL: n.ChatURL, ChatDID: n.ChatDID,
		ChatServiceRef: n.ChatServiceRef, ReportService: n.ReportServiceRef, CACertFile: n.CACertFile, CAKeyFile: n.caKeyFile,
		ClientHost: n.ClientHost, Faults: n.Faults, PID: n.PID, Accounts: n.Accounts,
	}
	if n.Faults {
		s.FaultsURL = n.ChatURL + "/_devchat/faults"
	}
	if n.AccessTokenTTL > 0 {
		s.AccessTokenTTL = n.AccessTokenTTL.String()
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("sandbox: state file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("sandbox: state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("sandbox: state file: %w", err)
	}
	return nil
}

// Load attaches to a sandbox running elsewhere (e.g. `make sandbox`) through
// its state file. The returned Network has no in-process Chat (faults go over
// HTTP) and its Close does nothing. It fails when the file is missing or is
// not a sandbox state file; it does not contact the network (see Ping).
func Load(path string) (*Network, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox: reading state file: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("sandbox: state file %s: %w", path, err)
	}
	if s.PDSURL == "" || s.PLCURL == "" || s.ChatURL == "" || s.ChatServiceRef == "" {
		return nil, fmt.Errorf("sandbox: state file %s lacks the PLC, PDS or chat URL", path)
	}
	n := &Network{
		PLCURL: s.PLCURL, PDSURL: s.PDSURL, ChatURL: s.ChatURL, ChatDID: s.ChatDID,
		ChatServiceRef: s.ChatServiceRef, ReportServiceRef: s.ReportService, Accounts: s.Accounts, CACertFile: s.CACertFile,
		ClientHost: s.ClientHost, Faults: s.Faults, PID: s.PID,
		caKeyFile: s.CAKeyFile,
		client:    &http.Client{Timeout: 30 * time.Second},
	}
	if s.AccessTokenTTL != "" {
		if n.AccessTokenTTL, err = time.ParseDuration(s.AccessTokenTTL); err != nil {
			return nil, fmt.Errorf("sandbox: state file %s: accessTokenTtl: %w", path, err)
		}
	}
	if n.Accounts == nil {
		n.Accounts = map[string]Account{}
	}
	return n, nil
}

// nodePorts returns the PLC and PDS ports: the requested ones if they are
// free now, distinct free ones for 0. It fails with ErrPortInUse.
func nodePorts(plc, pds int) (int, int, error) {
	plcLn, err := listenLoopback(plc, "PLC")
	if err != nil {
		return 0, 0, err
	}
	defer plcLn.Close()
	pdsLn, err := listenLoopback(pds, "PDS")
	if err != nil {
		return 0, 0, err
	}
	defer pdsLn.Close()
	return plcLn.Addr().(*net.TCPAddr).Port, pdsLn.Addr().(*net.TCPAddr).Port, nil
}

// listenLoopback listens on 127.0.0.1:port (0 → any free port).
func listenLoopback(port int, what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s port %d on 127.0.0.1 is taken (is another sandbox running? choose another port): %v", ErrPortInUse, what, port, err)
	}
	return ln, nil
}

// FindRepo walks up from the working directory to the directory holding
// go.mod. It fails when there is none.
func FindRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("sandbox: no go.mod above the working directory; set Options.RepoDir")
		}
		dir = parent
	}
}
