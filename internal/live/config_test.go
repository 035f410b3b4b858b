package live

import (
	"context"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/lex/chat"
)

func TestConfigReportsTheSettingsInEffect(t *testing.T) {
	src := LogSourceFunc(func(context.Context, User, string) (*chat.ConvoGetLog_Output, error) { return nil, nil })
	got := New(Config{Source: src}).Config()
	if got.ConvoInterval != DefaultConvoInterval || got.InboxInterval != DefaultInboxInterval ||
		got.Grace != DefaultGrace || got.MaxBackoff != DefaultMaxBackoff || got.CallTimeout != DefaultCallTimeout ||
		got.Heartbeat != DefaultHeartbeat || got.WriteTimeout != DefaultWriteTimeout || got.Buffer != DefaultBuffer {
		t.Errorf("zero Config did not take the defaults: %+v", got)
	}
	got = New(Config{Source: src, ConvoInterval: 2 * time.Second, InboxInterval: time.Minute, Grace: time.Second}).Config()
	if got.ConvoInterval != 2*time.Second || got.InboxInterval != time.Minute || got.Grace != time.Second {
		t.Errorf("settings not kept: %+v", got)
	}
}
