package oauth

import (
	"context"
	"fmt"
	"testing"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/websession"
)

func accountOf(h *harness, sessionID string) websession.Account {
	return websession.Account{DID: h.did, SessionID: sessionID}
}

func countRows(t testing.TB, h *harness, table string) int {
	t.Helper()
	var n int
	if err := h.db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// mismatchDir behaves like a real directory for handles whose DID document
// does not claim them: LookupHandle fails with ErrHandleMismatch.
type mismatchDir struct{ identity.Directory }

func (d mismatchDir) LookupHandle(ctx context.Context, h syntax.Handle) (*identity.Identity, error) {
	ident, err := d.Directory.LookupHandle(ctx, h)
	if err != nil {
		return nil, err
	}
	declared, err := ident.DeclaredHandle()
	if err != nil || declared != h.Normalize() {
		return nil, fmt.Errorf("%w: %s != %s", identity.ErrHandleMismatch, declared, h)
	}
	return ident, nil
}

func identityNoPDS(did syntax.DID, h syntax.Handle) identity.Identity {
	return identity.Identity{DID: did, Handle: h, AlsoKnownAs: []string{"at://" + h.String()}}
}
