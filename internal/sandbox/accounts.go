package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// demoNames are the accounts Start creates with SeedDemo, by short name.
// Their passwords are fixed ("alice-pass", …): the sandbox is loopback-only
// and thrown away on Close.
var demoNames = []struct{ name, display string }{
	{"alice", "Alice"},
	{"bob", "Bob"},
	{"carol", "Carol"},
	{"dave", "Dave"},
}

// CreateAccount creates an account on the sandbox PDS (email derived from the
// handle; password generated when empty). The handle must end in ".test"; its
// first label must be 3–18 letters, digits or hyphens. It returns the PDS's
// error (e.g. HandleNotAvailable) as an *atclient.APIError inside the error.
func (n *Network) CreateAccount(ctx context.Context, handle, password string) (Account, error) {
	acct, _, err := n.createAccount(ctx, handle, password)
	return acct, err
}

func (n *Network) createAccount(ctx context.Context, handle, password string) (Account, *atclient.APIClient, error) {
	h, err := syntax.ParseHandle(handle)
	if err != nil {
		return Account{}, nil, fmt.Errorf("sandbox: %w", err)
	}
	if password == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		password = hex.EncodeToString(b)
	}
	acct := Account{
		Handle:   h.Normalize().String(),
		Password: password,
		Email:    strings.TrimSuffix(h.Normalize().String(), ".test") + "@example.test",
	}
	c := atclient.NewAPIClient(n.PDSURL)
	c.Client = n.client
	var out struct {
		AccessJwt  string `json:"accessJwt"`
		RefreshJwt string `json:"refreshJwt"`
		DID        string `json:"did"`
	}
	in := map[string]string{"handle": acct.Handle, "email": acct.Email, "password": password}
	if err := c.Post(ctx, "com.atproto.server.createAccount", in, &out); err != nil {
		return Account{}, nil, fmt.Errorf("sandbox: creating %s: %w", acct.Handle, err)
	}
	did, err := syntax.ParseDID(out.DID)
	if err != nil {
		return Account{}, nil, fmt.Errorf("sandbox: creating %s: PDS returned DID %q: %w", acct.Handle, out.DID, err)
	}
	acct.DID = did.String()
	api := atclient.ResumePasswordSession(atclient.PasswordSessionData{
		AccessToken: out.AccessJwt, RefreshToken: out.RefreshJwt, AccountDID: did, Host: n.PDSURL,
	}, nil)
	api.Client = n.client
	return acct, api, nil
}

// Login opens a legacy password session (com.atproto.server.createSession) for
// acct and returns a client that refreshes it when it expires. It returns the
// PDS's error (e.g. AuthenticationRequired for a wrong password).
func (n *Network) Login(ctx context.Context, acct Account) (*atclient.APIClient, error) {
	c := atclient.NewAPIClient(n.PDSURL)
	c.Client = n.client
	var out struct {
		AccessJwt  string `json:"accessJwt"`
		RefreshJwt string `json:"refreshJwt"`
		DID        string `json:"did"`
	}
	in := map[string]string{"identifier": acct.Handle, "password": acct.Password}
	if err := c.Post(ctx, "com.atproto.server.createSession", in, &out); err != nil {
		return nil, fmt.Errorf("sandbox: login %s: %w", acct.Handle, err)
	}
	did, err := syntax.ParseDID(out.DID)
	if err != nil {
		return nil, fmt.Errorf("sandbox: login %s: PDS returned DID %q: %w", acct.Handle, out.DID, err)
	}
	api := atclient.ResumePasswordSession(atclient.PasswordSessionData{
		AccessToken: out.AccessJwt, RefreshToken: out.RefreshJwt, AccountDID: did, Host: n.PDSURL,
	}, nil)
	api.Client = n.client
	return api, nil
}

// PutRecord writes record (a JSON-able value with "$type") at
// collection/rkey in the repo of the account api is logged in as.
func PutRecord(ctx context.Context, api *atclient.APIClient, collection, rkey string, record any) error {
	in := map[string]any{"repo": api.AccountDID.String(), "collection": collection, "rkey": rkey, "record": record}
	if err := api.Post(ctx, "com.atproto.repo.putRecord", in, nil); err != nil {
		return fmt.Errorf("sandbox: putRecord %s/%s: %w", collection, rkey, err)
	}
	return nil
}

// Follow makes the account api is logged in as follow subject.
func Follow(ctx context.Context, api *atclient.APIClient, subject string) error {
	in := map[string]any{
		"repo":       api.AccountDID.String(),
		"collection": "app.bsky.graph.follow",
		"record": map[string]any{
			"$type":     "app.bsky.graph.follow",
			"subject":   subject,
			"createdAt": time.Now().UTC().Format(time.RFC3339Nano),
		},
	}
	if err := api.Post(ctx, "com.atproto.repo.createRecord", in, nil); err != nil {
		return fmt.Errorf("sandbox: follow %s: %w", subject, err)
	}
	return nil
}

// seedDemo creates alice, bob, carol and dave with profiles; alice and bob follow
// each other; carol accepts chats only from accounts she follows (nobody).
func (n *Network) seedDemo(ctx context.Context) error {
	clients := map[string]*atclient.APIClient{}
	for _, d := range demoNames {
		acct, api, err := n.createAccount(ctx, d.name+".test", d.name+"-pass")
		if err != nil {
			return err
		}
		profile := map[string]any{"$type": "app.bsky.actor.profile", "displayName": d.display}
		if err := PutRecord(ctx, api, "app.bsky.actor.profile", "self", profile); err != nil {
			return err
		}
		n.Accounts[d.name] = acct
		clients[d.name] = api
	}
	if err := Follow(ctx, clients["alice"], n.Accounts["bob"].DID); err != nil {
		return err
	}
	if err := Follow(ctx, clients["bob"], n.Accounts["alice"].DID); err != nil {
		return err
	}
	decl := map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": "following"}
	return PutRecord(ctx, clients["carol"], "chat.bsky.actor.declaration", "self", decl)
}
