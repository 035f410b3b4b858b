package views

import "testing"

func TestLockedGroupSaysWhoLockedItAndHow(t *testing.T) {
	tests := []struct {
		g    GroupConvoVM
		want string
	}{
		{GroupConvoVM{LockStatus: LockLocked}, "This group is locked. No new messages can be sent."},
		{GroupConvoVM{LockStatus: LockLocked, LockedBy: "Bob"}, "Bob locked this group. No new messages can be sent."},
		{GroupConvoVM{LockStatus: LockLockedPermanently}, "This group is locked permanently. No new messages can be sent."},
		{GroupConvoVM{LockStatus: LockLockedPermanently, LockedBy: "Bob"}, "Bob locked this group permanently. No new messages can be sent."},
		{GroupConvoVM{LockStatus: LockLocked, LockedBy: "Bob", ModerationLock: true}, "This group was locked by Bluesky moderation. No new messages can be sent."},
	}
	for _, tt := range tests {
		if !tt.g.Locked() {
			t.Errorf("%+v not locked", tt.g)
		}
		if got := tt.g.LockedText(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.g, got, tt.want)
		}
	}
	var direct *GroupConvoVM
	if direct.Locked() || (&GroupConvoVM{LockStatus: LockUnlocked}).Locked() || (&GroupConvoVM{}).Locked() {
		t.Error("a direct or unlocked conversation is locked")
	}
	if got := (&GroupConvoVM{MemberCount: 1}).MembersLabel(); got != "1 member" {
		t.Errorf("%q", got)
	}
}
