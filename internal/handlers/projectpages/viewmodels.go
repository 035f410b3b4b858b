package projectpages

// The project pages' view models: handles for DIDs, and what each viewer
// may see of a change request and its DM.

import (
	"context"
	"github.com/skydm/skydm/internal/handlers/kit"
	"net/url"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/wording"
	"github.com/skydm/skydm/views"
)

// names resolves DIDs to handles for display, in parallel and bounded in
// time; a DID whose handle is unknown or unverified maps to itself. The
// signed-in accounts of this browser are known without a lookup.
func (pg *Pages) names(ctx context.Context, dids ...syntax.DID) map[syntax.DID]string {
	out := make(map[syntax.DID]string, len(dids))
	v := kit.ViewerFrom(ctx)
	for _, a := range v.Accounts {
		if a.Handle != "" && a.Handle != "handle.invalid" {
			out[a.DID] = a.Handle
		}
	}
	if v.Current != nil && v.Current.Handle != "" && v.Current.Handle != "handle.invalid" {
		out[v.Current.DID] = v.Current.Handle
	}
	var todo []syntax.DID
	for _, d := range dids {
		if _, ok := out[d]; !ok && d != "" {
			out[d] = d.String() // placeholder until looked up
			todo = append(todo, d)
		}
	}
	dir := pg.cfg.Directory
	if dir == nil || len(todo) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, lookupParallel)
	)
	for _, d := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ident, err := dir.LookupDID(ctx, d)
			if err != nil || ident == nil || ident.Handle == "" || ident.Handle.IsInvalidHandle() {
				return
			}
			mu.Lock()
			out[d] = ident.Handle.String()
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func changeRequestDIDs(list []projects.ChangeRequest) []syntax.DID {
	var dids []syntax.DID
	for _, c := range list {
		dids = append(dids, c.RequesterDID, c.OwnerDID)
		for _, n := range c.Notifications {
			dids = append(dids, n.SenderDID, n.RecipientDID)
		}
	}
	return dids
}

func nameOf(names map[syntax.DID]string, d syntax.DID) string {
	if n, ok := names[d]; ok {
		return n
	}
	return d.String()
}

func projectVM(p projects.Project, names map[syntax.DID]string) views.ProjectVM {
	return views.ProjectVM{
		Path:        p.Path(),
		Name:        p.Name,
		Description: p.Description,
		OwnerDID:    p.OwnerDID.String(),
		OwnerName:   nameOf(names, p.OwnerDID),
		Created:     p.CreatedAt,
	}
}

func (pg *Pages) changeRequestVM(c projects.ChangeRequest, viewer syntax.DID, names map[syntax.DID]string) views.ChangeRequestVM {
	vm := views.ChangeRequestVM{
		Path:          c.Path(),
		Title:         c.Title,
		Body:          c.Body,
		ProjectPath:   projects.ProjectPath(c.OwnerDID, c.ProjectURI.RecordKey()),
		ProjectName:   c.ProjectName,
		RequesterDID:  c.RequesterDID.String(),
		RequesterName: nameOf(names, c.RequesterDID),
		OwnerDID:      c.OwnerDID.String(),
		OwnerName:     nameOf(names, c.OwnerDID),
		Created:       c.CreatedAt,
	}
	// Whether and why the owner was told is the requester's and the
	// owner's business: nobody else (signed out included) sees it.
	if viewer == "" || (viewer != c.RequesterDID && viewer != c.OwnerDID) {
		return vm
	}
	vm.DeliveryVisible = true
	for _, n := range c.Notifications {
		vm.Deliveries = append(vm.Deliveries, deliveryVM(n, viewer, names))
	}
	return vm
}

// deliveryVM is what viewer (the requester or the owner: changeRequestVM
// shows deliveries to nobody else) may see of one DM's delivery: the
// reason, the fix addressed to whoever can act on it, the conversation
// link for its members, and Retry.
func deliveryVM(n notify.Status, viewer syntax.DID, names map[syntax.DID]string) views.DeliveryVM {
	d := views.DeliveryVM{
		ID:            n.ID,
		State:         string(n.State),
		Label:         n.State.Label(),
		Reason:        n.Reason,
		RecipientName: nameOf(names, n.RecipientDID),
		SenderName:    nameOf(names, n.SenderDID),
		Attempts:      n.Attempts,
		SentAt:        n.SentAt,
	}
	if n.State == notify.StateQueued && n.Attempts > 0 {
		d.NextAttempt = n.NextAttemptAt
	}
	isRequester := viewer != "" && viewer == n.RequesterDID
	isRecipient := viewer != "" && viewer == n.RecipientDID
	switch {
	case isRequester:
		d.Fix = n.Fix
	case isRecipient:
		d.Fix = ownerFix(n, d.SenderName)
	}
	if n.State == notify.StateSent && n.ConvoID != "" && (isRecipient || viewer == n.SenderDID) && viewer != "" {
		d.ConvoPath = "/convos/" + url.PathEscape(n.ConvoID)
	}
	d.CanRetry = n.State.Retryable() && (isRequester || isRecipient)
	return d
}

// ownerFix says, to the project's owner, what would let a refused DM
// through (notify's Fix is addressed to the requester), from the one table
// of such sentences (internal/wording).
func ownerFix(n notify.Status, sender string) string {
	return wording.ToOwner(n.ReasonCode, n.State == notify.StateGivenUp, sender)
}
