package chatproxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
)

// ReasonServerUnavailable is the Reason when the account's own PDS does not
// answer (as opposed to ReasonUnavailable: the chat service behind it).
const ReasonServerUnavailable = "ServerUnavailable"

// msgServerUnavailable is the message when the account's PDS (host) does
// not answer.
func msgServerUnavailable(host string) string {
	if host == "" {
		return "Your server (the one that holds your account) is not answering right now. Please try again in a moment."
	}
	return "Your server " + host + " is not answering right now (it holds your account, and DMs go through it). Please try again in a moment."
}

// probeTimeout bounds the look at the PDS after a call timed out. It fits in
// the slice of a request's deadline the pages keep for answering.
const probeTimeout = 500 * time.Millisecond

// whichFailed turns an Unavailable err into ReasonServerUnavailable when it
// was the account's PDS itself that did not answer, not the chat service
// it proxies to. The PDS answers for the chat service when that one fails
// (the reference PDS: 500 InternalServerError for a refused connection,
// 502 UpstreamFailure, 504 UpstreamTimeout, "could not resolve proxy"), so:
//
//   - an XRPC error from the PDS (any named 5xx) is the chat service's;
//   - a 5xx that is not XRPC (a load balancer's HTML 502) is the PDS's;
//   - no answer at all (refused, reset, DNS) is the PDS's;
//   - a timeout is either: the PDS is asked (GET /xrpc/_health, probeTimeout)
//     and is the one that failed only when it does not answer that either.
//
// ctx is the call's context before it ended (for the probe's values).
func (c *Client) whichFailed(ctx context.Context, err error) error {
	e := apperr.As(err)
	if e == nil || e.Reason != ReasonUnavailable || e.Err == nil || !c.pdsFailed(ctx, e.Err) {
		return err
	}
	return &apperr.Error{Code: apperr.Unavailable, Reason: ReasonServerUnavailable,
		Message: msgServerUnavailable(hostOf(c.api.Host)), RetryAt: e.RetryAt, Err: e.Err}
}

// pdsFailed reports whether cause (of an Unavailable call) is the PDS not
// answering; see whichFailed.
func (c *Client) pdsFailed(ctx context.Context, cause error) bool {
	var apiErr *atclient.APIError
	if errors.As(cause, &apiErr) {
		return apiErr.StatusCode >= 500 && apiErr.Name == ""
	}
	var netErr net.Error
	if errors.Is(cause, context.DeadlineExceeded) || (errors.As(cause, &netErr) && netErr.Timeout()) {
		return !c.pdsAnswers(ctx)
	}
	var urlErr *url.Error
	return errors.As(cause, &urlErr) || errors.As(cause, &netErr)
}

// pdsAnswers reports whether the PDS answers GET /xrpc/_health (any status
// below 500) within probeTimeout.
func (c *Client) pdsAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api.Host+"/xrpc/_health", nil)
	if err != nil {
		return false
	}
	hc := c.api.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 500
}

// hostOf returns the host[:port] of a URL, or "".
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
