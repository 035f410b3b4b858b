package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/projects"
)

func TestProjectSettingsDefaultsAndOverrides(t *testing.T) {
	env := baseEnv(t, writeState(t))
	c, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.NSIDAuthority != projects.DefaultAuthority || c.NotifierDID != "" || c.Outbox.LeaseDuration != 2*time.Minute {
		t.Errorf("defaults: authority %q notifier %q lease %v", c.NSIDAuthority, c.NotifierDID, c.Outbox.LeaseDuration)
	}
	env["SKYDM_NSID_AUTHORITY"] = "com.example.skydm"
	env["SKYDM_NOTIFIER_DID"] = "did:plc:notifier000000000000000"
	c, err = parseConfig([]string{"-outbox-lease", "45s"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.NSIDAuthority != "com.example.skydm" || c.NotifierDID != "did:plc:notifier000000000000000" || c.Outbox.LeaseDuration != 45*time.Second {
		t.Errorf("overrides: authority %q notifier %q lease %v", c.NSIDAuthority, c.NotifierDID, c.Outbox.LeaseDuration)
	}
}

func TestBadProjectSettingsAreNamedInOneError(t *testing.T) {
	env := baseEnv(t, writeState(t))
	env["SKYDM_NSID_AUTHORITY"] = "not an authority"
	env["SKYDM_NOTIFIER_DID"] = "bob.test"
	env["SKYDM_OUTBOX_LEASE"] = "5s"
	_, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"-nsid-authority (SKYDM_NSID_AUTHORITY)", "-notifier-did (SKYDM_NOTIFIER_DID)", "-outbox-lease (SKYDM_OUTBOX_LEASE)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}
