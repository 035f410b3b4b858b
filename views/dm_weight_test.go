package views

import (
	"fmt"
	"io/fs"
	"testing"

	"github.com/skydm/skydm/static"
)

// TestConvoPageWeight checks the first-load weight of a conversation page
// (HTML + CSS + JS as served, uncompressed) against issue 4's 60 KB target
// (group pages' and the pages around groups' assets are linked only there),
// for a page of
// 50 messages (the page size the handler should ask getMessages for), a
// third with a link and a mention and a quarter with two reactions, with
// real-length ids.
func TestConvoPageWeight(t *testing.T) {
	const budget = 60 * 1024
	assets := 0
	for _, name := range []string{"app.css", "app.js", "dm.css", "dm.js"} {
		b, err := fs.ReadFile(static.FS(), name) // as served: comments stripped
		if err != nil {
			t.Fatal(err)
		}
		assets += len(b)
	}
	for _, n := range []int{40, 50, 100} {
		vm := convoFixture(n)
		// Real ids are 13-character TIDs.
		vm.ID = "3lbxq2cz6ok2a"
		for i := range vm.Messages {
			vm.Messages[i].ID = fmt.Sprintf("3lbxr%03dz6ok", i)
		}
		_, html := renderDoc(t, ConvoPage(testPage(), vm))
		total := len(html) + assets
		t.Logf("%d messages: HTML %d B + CSS/JS %d B = %d B (%.1f KB)", n, len(html), assets, total, float64(total)/1024)
		if n == 50 && total > budget {
			t.Fatalf("conversation page of 50 messages weighs %d B, over the %d B budget", total, budget)
		}
	}
}
