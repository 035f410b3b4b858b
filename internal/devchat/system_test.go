package devchat

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every system message variant renders as the lexicon says, in getMessages
// and as its getLog event (the env validates each answer), including those
// only join links make.
func TestEverySystemMessageVariantRendersWithItsLogEvent(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	bob := e.invitable("bob")[0]
	c := e.createGroup(alice, "g", bob)
	start := *getLog(t, e, bob, "").Cursor

	e.srv.mu.Lock()
	g := e.srv.st.convos[c.Id]
	for k := sysAddMember; k <= sysDisableJoinLink; k++ {
		d := systemData{kind: k, member: bob.did, actor: alice.did, role: roleStandard, oldName: "g", newName: "h"}
		e.srv.systemLocked(g, d)
	}
	e.srv.mu.Unlock()

	got := strings.Join(logTypes(getLog(t, e, bob, start)), ",")
	want := "logAddMember,logRemoveMember,logMemberJoin,logMemberLeave,logLockConvo,logUnlockConvo,logLockConvoPermanently," +
		"logEditGroup,logCreateJoinLink,logEditJoinLink,logEnableJoinLink,logDisableJoinLink"
	if got != want {
		t.Errorf("log = %s\nwant  %s", got, want)
	}
	var types []string
	for _, m := range e.messages(bob, c.Id).Messages[:12] {
		b, _ := json.Marshal(m.ConvoDefs_SystemMessageView.Data)
		var v struct {
			Type string `json:"$type"`
		}
		_ = json.Unmarshal(b, &v)
		types = append([]string{strings.TrimPrefix(v.Type, "chat.bsky.convo.defs#systemMessageData")}, types...)
	}
	if got := strings.Join(types, ","); got != "AddMember,RemoveMember,MemberJoin,MemberLeave,LockConvo,UnlockConvo,LockConvoPermanently,EditGroup,CreateJoinLink,EditJoinLink,EnableJoinLink,DisableJoinLink" {
		t.Errorf("system message data = %s", got)
	}
}
