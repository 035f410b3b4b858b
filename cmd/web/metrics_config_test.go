package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsAddrIsOffByDefaultAndChecked: no metrics listener unless
// -metrics-addr (SKYDM_METRICS_ADDR) is given; a value that is not
// host:port is named in the one configuration error; the flag wins over
// the variable.
func TestMetricsAddrIsOffByDefaultAndChecked(t *testing.T) {
	env := baseEnv(t, writeState(t))
	getenv := func(k string) string { return env[k] }
	if c, err := parseConfig(nil, getenv, io.Discard); err != nil || c.MetricsAddr != "" {
		t.Fatalf("default: %q %v, want no metrics listener", c.MetricsAddr, err)
	}
	env["SKYDM_METRICS_ADDR"] = "127.0.0.1:9090"
	if c, err := parseConfig([]string{"-metrics-addr", "127.0.0.1:9191"}, getenv, io.Discard); err != nil || c.MetricsAddr != "127.0.0.1:9191" {
		t.Fatalf("flag over variable: %q %v", c.MetricsAddr, err)
	}
	env["SKYDM_METRICS_ADDR"] = "9090"
	_, err := parseConfig(nil, getenv, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-metrics-addr (SKYDM_METRICS_ADDR)") {
		t.Fatalf("bad address: %v, want it named", err)
	}
}

// TestNoMetricsListenerByDefault: without -metrics-addr nothing serves
// metrics, and the public listener answers 404 for /metrics.
func TestNoMetricsListenerByDefault(t *testing.T) {
	base, logs := startRun(t, nil, baseEnv(t, writeState(t)))
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404", res.StatusCode)
	}
	if strings.Contains(logs.String(), "serving metrics") {
		t.Errorf("metrics served without -metrics-addr:\n%s", logs)
	}
}
