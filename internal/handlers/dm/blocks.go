package dm

import (
	"context"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/xrpcerr"
)

// blockType is the record type (and collection) of a block.
const blockType = "app.bsky.graph.block"

// maxBlockPages bounds how many pages of 100 block records Unblock reads
// looking for the subject's when the viewer state did not name it.
const maxBlockPages = 20

// Block creates an app.bsky.graph.block record of subject in the account's
// repository (com.atproto.repo.createRecord). Errors are *apperr.Error.
func (c proxyChat) Block(ctx context.Context, subject string) error {
	in := map[string]any{"repo": c.repo(), "collection": blockType, "record": map[string]any{
		"$type": blockType, "subject": subject, "createdAt": syntax.DatetimeNow().String(),
	}}
	return blockError(c.api.Post(ctx, "com.atproto.repo.createRecord", in, nil))
}

// Unblock deletes the account's block records of subject: the one
// knownURI names (the viewer state's viewer.blocking) when it is in the
// account's repository, else every one found by listing the account's
// block records (at most maxBlockPages pages). No block is no error.
func (c proxyChat) Unblock(ctx context.Context, subject, knownURI string) error {
	var rkeys []string
	if u, err := syntax.ParseATURI(knownURI); err == nil && u.Authority().String() == c.repo() && u.Collection().String() == blockType {
		rkeys = append(rkeys, u.RecordKey().String())
	} else {
		rkeys, err = c.blockKeys(ctx, subject)
		if err != nil {
			return err
		}
	}
	for _, rkey := range rkeys {
		err := c.api.Post(ctx, "com.atproto.repo.deleteRecord", map[string]any{"repo": c.repo(), "collection": blockType, "rkey": rkey}, nil)
		if err != nil {
			return blockError(err)
		}
	}
	return nil
}

// blockKeys lists the account's block records and returns the record keys
// of those of subject.
func (c proxyChat) blockKeys(ctx context.Context, subject string) ([]string, error) {
	var keys []string
	cursor := ""
	for range maxBlockPages {
		var out struct {
			Cursor  *string `json:"cursor"`
			Records []struct {
				URI   string `json:"uri"`
				Value struct {
					Subject string `json:"subject"`
				} `json:"value"`
			} `json:"records"`
		}
		params := map[string]any{"repo": c.repo(), "collection": blockType, "limit": 100}
		if cursor != "" {
			params["cursor"] = cursor
		}
		if err := c.api.Get(ctx, "com.atproto.repo.listRecords", params, &out); err != nil {
			return nil, blockError(err)
		}
		for _, rec := range out.Records {
			if u, err := syntax.ParseATURI(rec.URI); err == nil && rec.Value.Subject == subject {
				keys = append(keys, u.RecordKey().String())
			}
		}
		cursor = str(out.Cursor)
		if cursor == "" || len(out.Records) == 0 {
			break
		}
	}
	return keys, nil
}

// blockError maps a failed block call to the account's PDS (xrpcerr).
func blockError(err error) error {
	return xrpcerr.Map(err, xrpcerr.Words{
		Forbidden:     "skydm may not change your blocks. Sign in again and allow it.",
		Refused:       "Your PDS did not accept the change to your blocks.",
		RefusedReason: "InvalidRequest",
		Outcome:       "Nothing was changed.",
	})
}
