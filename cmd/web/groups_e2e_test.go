package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// TestE2EGroupCreateAddRemove drives the group pages against the sandbox:
// alice creates a group with bob through /convos/new-group, and dave, who
// takes group invitations only from people he follows (not alice), is
// refused with the reason before anything is created; then, on the members
// page, alice adds carol, cannot remove herself (the owner), and removes
// carol.
//
// NEEDS DEVCHAT GROUPS: it fails until devchat models groups (today its
// chat.bsky.actor.getStatus says canCreateGroups false, so the form
// answers "Your account can't create group chats yet."; and group.
// createGroup, addMembers, removeMembers and convo.getConvoMembers are
// MethodNotImplemented). Another part of issue 10 adds them. It is not
// skipped: under CI it must pass once they are merged.
func TestE2EGroupCreateAddRemove(t *testing.T) {
	n := testenv.Network(t)
	alice, bob, carol, dave := testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	dmFollowEachOther(t, n, alice, carol)
	groupsDeclare(t, n, dave, "all", "following") // dave follows nobody
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	signInHTTP(t, b, alice)

	// A refused member: the reason next to his handle, nothing created.
	form := url.Values{"name": {"Weekend plans"}, "members": {bob.Handle + "\n" + dave.Handle}}
	res, doc := b.post("/convos/new-group", form)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("new group with dave: %d %q", res.StatusCode, dmText(doc.Find(`[data-testid="error"]`)))
	}
	refused := dmText(doc.Find(`[data-testid="refused-member"]`))
	if want := dave.Handle + ": " + dave.Handle + " only accepts group invitations from people they follow."; refused != want {
		t.Fatalf("refused %q, want %q", refused, want)
	}
	if _, inbox := b.get(base + "/"); strings.Contains(inbox.Text(), "Weekend plans") {
		t.Fatal("a group was created although dave was refused")
	}

	// Without dave: created, and alice lands in it.
	form.Set("members", bob.Handle)
	res, doc = b.post("/convos/new-group", form)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/convos/") {
		t.Fatalf("new group: %d %q", res.StatusCode, dmText(doc.Find(`[data-testid="error"]`)))
	}
	id := strings.TrimSuffix(strings.TrimPrefix(loc, "/convos/"), "#latest")
	members := "/convos/" + id + "/members"

	res, doc = b.post(members+"/add", url.Values{"members": {carol.Handle}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add carol: %d %q", res.StatusCode, dmText(doc.Find(`[data-testid="error"], [data-testid="refused-member"]`)))
	}
	_, doc = b.get(base + members)
	if got := dmText(doc.Find(`[data-testid="member-count"]`)); !strings.HasPrefix(got, "3 members") {
		t.Errorf("count %q after adding carol", got)
	}
	roles := map[string]string{}
	doc.Find(`[data-testid="member"]`).Each(func(_ int, s *goquery.Selection) {
		roles[s.AttrOr("data-did", "")] = dmText(s.Find(`[data-testid="member-role"]`))
	})
	if roles[alice.DID] != "Owner" || roles[bob.DID] != "Member" || roles[carol.DID] != "Member" {
		t.Errorf("roles %v", roles)
	}

	res, doc = b.post(members+"/remove", url.Values{"member": {alice.DID}})
	if got := dmText(doc.Find(`[data-testid="error"]`)); res.StatusCode != http.StatusBadRequest || !strings.Contains(got, "owner can't be removed") {
		t.Fatalf("removing the owner: %d %q", res.StatusCode, got)
	}
	res, _ = b.post(members+"/remove", url.Values{"member": {carol.DID}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove carol: %d", res.StatusCode)
	}
	_, doc = b.get(base + members)
	if doc.Find(`[data-did="`+carol.DID+`"]`).Length() != 0 || !strings.HasPrefix(dmText(doc.Find(`[data-testid="member-count"]`)), "2 members") {
		t.Errorf("carol still listed: %q", dmText(doc.Find(`[data-testid="members-list"]`)))
	}
}

// groupsDeclare writes acct's chat declaration.
func groupsDeclare(t *testing.T, n *sandbox.Network, acct sandbox.Account, incoming, groups string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	decl := map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": incoming, "allowGroupInvites": groups}
	if err := sandbox.PutRecord(ctx, testenv.PasswordSession(t, n, acct), "chat.bsky.actor.declaration", "self", decl); err != nil {
		t.Fatal(err)
	}
}
