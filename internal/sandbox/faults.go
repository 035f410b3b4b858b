package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/skydm/skydm/internal/devchat"
)

// ErrFaultsDisabled is returned by the fault methods when the sandbox was
// started without Faults.
var ErrFaultsDisabled = errors.New("sandbox: devchat fault injection is off (start with Faults / -faults)")

// InjectFault makes devchat fail upcoming calls as f describes: directly when
// devchat runs in this process, else over HTTP (POST /_devchat/faults). It
// returns ErrFaultsDisabled when faults are off, or devchat's refusal.
func (n *Network) InjectFault(ctx context.Context, f devchat.Fault) error {
	if !n.Faults {
		return ErrFaultsDisabled
	}
	if n.Chat != nil {
		return n.Chat.InjectFault(f)
	}
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return n.faultsRequest(ctx, http.MethodPost, "/_devchat/faults", body, nil)
}

// ClearFaults removes every injected fault. It returns ErrFaultsDisabled when
// faults are off, or the HTTP failure when attached through Load.
func (n *Network) ClearFaults(ctx context.Context) error {
	if !n.Faults {
		return ErrFaultsDisabled
	}
	if n.Chat != nil {
		n.Chat.ClearFaults()
		return nil
	}
	return n.faultsRequest(ctx, http.MethodDelete, "/_devchat/faults", nil, nil)
}

// Calls reports how many authenticated calls of the NSID method devchat has
// received. Over HTTP it needs Faults (GET /_devchat/calls); it returns
// ErrFaultsDisabled otherwise.
func (n *Network) Calls(ctx context.Context, method string) (int, error) {
	if n.Chat != nil {
		return n.Chat.Calls(method), nil
	}
	if !n.Faults {
		return 0, ErrFaultsDisabled
	}
	var out struct {
		Calls map[string]int `json:"calls"`
	}
	if err := n.faultsRequest(ctx, http.MethodGet, "/_devchat/calls", nil, &out); err != nil {
		return 0, err
	}
	return out.Calls[method], nil
}

func (n *Network) faultsRequest(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, n.ChatURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("sandbox: devchat %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("sandbox: devchat %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sandbox: devchat %s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("sandbox: devchat %s %s: %w", method, path, err)
		}
	}
	return nil
}
