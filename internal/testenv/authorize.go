package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// AuthorizeError is returned by CompleteAuthorize when the PDS answers a step
// with an error: Step is "authorize", "sign-in", "consent", "reject" or
// "redirect"; Status and Body are the PDS's answer (e.g. 400
// {"error":"InvalidCredentials",…} for a wrong password).
type AuthorizeError struct {
	Step   string
	Status int
	Body   string
}

// Error says which step failed and what the PDS answered.
func (e *AuthorizeError) Error() string {
	return fmt.Sprintf("testenv: authorize %s: HTTP %d: %s", e.Step, e.Status, e.Body)
}

// authorizeData is what the PDS embeds in its authorize page for its UI
// (window["__authorizeData"]).
type authorizeData struct {
	RequestURI string `json:"requestUri"`
	ClientID   string `json:"clientId"`
	Scope      string `json:"scope"`
	LoginHint  string `json:"loginHint"`
}

// CompleteAuthorize plays the person in front of the PDS's own authorization
// page, over plain HTTP (no browser): it opens authorizeURL (the URL an app
// sends the browser to after PAR), signs in with username (handle or email)
// and password, approves the requested scope (or denies when approve is
// false), and follows the PDS's redirect. It returns the URL the browser
// would be sent to next: the app's redirect_uri with code, state and iss (or
// error=access_denied). A step the PDS refuses gives an *AuthorizeError.
func CompleteAuthorize(ctx context.Context, authorizeURL, username, password string, approve bool) (redirectURL string, err error) {
	au, err := url.Parse(authorizeURL)
	if err != nil {
		return "", fmt.Errorf("testenv: authorize URL: %w", err)
	}
	origin := au.Scheme + "://" + au.Host
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	// 1. The authorize page, as a top-level navigation (sets dev-id, ses-id
	// and csrf-token cookies).
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return "", err
	}
	setNavigate(req, "none")
	status, page, hdr, err := do(c, req)
	if err != nil {
		return "", err
	}
	if status == http.StatusSeeOther || status == http.StatusFound {
		// The PDS answered the request straight away (e.g. an error redirect).
		return hdr.Get("Location"), nil
	}
	if status != http.StatusOK {
		return "", &AuthorizeError{Step: "authorize", Status: status, Body: snippet(page)}
	}
	data, err := parseAuthorizeData(page)
	if err != nil {
		return "", err
	}
	// The csrf-token cookie may be rotated by the API calls (rotateDeviceCookies).
	csrfToken := func() string {
		for _, ck := range jar.Cookies(au) {
			if ck.Name == "csrf-token" {
				return ck.Value
			}
		}
		return ""
	}
	if csrfToken() == "" {
		return "", errors.New("testenv: the authorize page set no csrf-token cookie")
	}

	api := func(step string, in any, out any) error {
		body, err := json.Marshal(in)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, origin+"/@atproto/oauth-provider/~api/"+step, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Origin", origin)
		req.Header.Set("Referer", authorizeURL)
		req.Header.Set("Sec-Fetch-Mode", "same-origin")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Sec-Fetch-Dest", "empty")
		req.Header.Set("X-CSRF-Token", csrfToken())
		status, b, _, err := do(c, req)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return &AuthorizeError{Step: step, Status: status, Body: snippet(b)}
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("testenv: authorize %s: %w", step, err)
		}
		return nil
	}

	// 2. Sign in.
	var signIn struct {
		Account struct {
			DID string `json:"did"`
		} `json:"account"`
	}
	if err := api("sign-in", map[string]any{"locale": "en", "username": username, "password": password, "remember": true}, &signIn); err != nil {
		return "", err
	}
	if signIn.Account.DID == "" {
		return "", errors.New("testenv: sign-in answered without an account DID")
	}

	// 3. Consent (with the scope the page asks for) or reject.
	var result struct {
		URL string `json:"url"`
	}
	if approve {
		in := map[string]any{"did": signIn.Account.DID}
		if data.Scope != "" {
			in["scope"] = data.Scope
		}
		err = api("consent", in, &result)
	} else {
		err = api("reject", map[string]any{}, &result)
	}
	if err != nil {
		return "", err
	}

	// 4. The PDS's redirect page answers 303 to the client's redirect_uri.
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, result.URL, nil)
	if err != nil {
		return "", fmt.Errorf("testenv: redirect URL %q: %w", result.URL, err)
	}
	setNavigate(req, "same-origin")
	req.Header.Set("Origin", origin)
	req.Header.Set("Referer", authorizeURL)
	status, b, hdr, err := do(c, req)
	if err != nil {
		return "", err
	}
	loc := hdr.Get("Location")
	if status/100 != 3 || loc == "" {
		return "", &AuthorizeError{Step: "redirect", Status: status, Body: snippet(b)}
	}
	return loc, nil
}

func setNavigate(req *http.Request, site string) {
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Sec-Fetch-Site", site)
	req.Header.Set("User-Agent", "skydm-testenv")
}

func do(c *http.Client, req *http.Request) (int, []byte, http.Header, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("testenv: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("testenv: %s %s: %w", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, b, resp.Header, nil
}

// parseAuthorizeData finds the UI's hydration data in the authorize page:
//
//	window["__authorizeData"]=JSON.parse("{\"requestUri\":…}");
//
// The argument of JSON.parse is a JSON string literal whose content is the
// JSON object (with "<" escaped as \u003c).
func parseAuthorizeData(page []byte) (authorizeData, error) {
	var d authorizeData
	const marker = `"__authorizeData"`
	i := bytes.Index(page, []byte(marker))
	if i < 0 {
		return d, fmt.Errorf("testenv: authorize page has no %s (page changed?): %s", marker, snippet(page))
	}
	rest := page[i+len(marker):]
	j := bytes.Index(rest, []byte("JSON.parse("))
	if j < 0 {
		return d, errors.New("testenv: authorize page: no JSON.parse( after __authorizeData")
	}
	dec := json.NewDecoder(bytes.NewReader(rest[j+len("JSON.parse("):]))
	var inner string
	if err := dec.Decode(&inner); err != nil {
		return d, fmt.Errorf("testenv: authorize page: __authorizeData: %w", err)
	}
	if err := json.Unmarshal([]byte(inner), &d); err != nil {
		return d, fmt.Errorf("testenv: authorize page: __authorizeData: %w", err)
	}
	return d, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}
