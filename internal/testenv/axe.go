package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/sandbox"
)

// AxeViolation is one axe-core rule a page breaks, with the elements that
// break it.
type AxeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target         json.RawMessage `json:"target"`
		HTML           string          `json:"html"`
		FailureSummary string          `json:"failureSummary"`
	} `json:"nodes"`
}

// String is the violation as one readable paragraph: rule, help, and each
// element with why it fails.
func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %s %s\n      %s", n.Target, n.HTML, strings.ReplaceAll(n.FailureSummary, "\n", "\n      "))
	}
	return b.String()
}

// AxeTags are the axe-core rule tags the accessibility check runs: WCAG
// 2.0, 2.1 and 2.2 at levels A and AA (2.2 AA brings target-size), and
// axe's best practices.
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"}

var axeSource = sync.OnceValues(func() (string, error) {
	repo, err := sandbox.FindRepo()
	if err != nil {
		return "", err
	}
	// sandbox/install.sh links sandbox/node_modules to the cached npm
	// packages of sandbox/package-lock.json, axe-core among them.
	b, err := os.ReadFile(filepath.Join(repo, "sandbox", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		return "", fmt.Errorf("testenv: axe-core is not installed (sandbox/install.sh installs it): %w", err)
	}
	return string(b), nil
})

// Axe runs axe-core on the page loaded in the tab of ctx with AxeTags and
// returns the violations (none: nil). The script is injected with
// Runtime.evaluate, which the page's CSP does not govern. It fails when
// axe-core is not installed or cannot run.
func Axe(ctx context.Context) ([]AxeViolation, error) {
	src, err := axeSource()
	if err != nil {
		return nil, err
	}
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === 'object'`))
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if !loaded {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](src)); err != nil {
			return nil, fmt.Errorf("testenv: loading axe-core: %w", err)
		}
	}
	tags, _ := json.Marshal(AxeTags)
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](
		`axe.run(document, {runOnly: {type: 'tag', values: `+string(tags)+`}, resultTypes: ['violations']}).then(r => r.violations)`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("testenv: running axe-core: %w", err)
	}
	var vs []AxeViolation
	if err := json.Unmarshal(raw, &vs); err != nil {
		return nil, fmt.Errorf("testenv: axe-core's answer: %w", err)
	}
	return vs, nil
}
