package views

import (
	"strings"
	"testing"
	"time"
)

func TestInboxPage(t *testing.T) {
	vm := inboxFixture(3)
	vm.Convos[1].Members = []MemberVM{{DID: "did:plc:noavatar", Handle: "zoe.test"}}
	vm.Convos[1].Muted = true
	vm.Convos[1].Unread = 0
	vm.Convos[0].Unread = 3
	doc, _ := renderDoc(t, InboxPage(testPage(), vm))

	rows := doc.Find(`[data-testid="convo-row"]`)
	if rows.Length() != 3 {
		t.Fatalf("got %d rows, want 3", rows.Length())
	}
	t.Run("rows keep the given order", func(t *testing.T) {
		for i, want := range []string{"convo000", "convo001", "convo002"} {
			if id, _ := rows.Eq(i).Attr("data-id"); id != want {
				t.Fatalf("row %d id %q, want %q", i, id, want)
			}
		}
	})
	t.Run("unread row has badge with count", func(t *testing.T) {
		b := rows.Eq(0).Find(`[data-testid="unread-badge"]`)
		if b.Length() != 1 || !strings.HasPrefix(strings.TrimSpace(b.Text()), "3") || !strings.Contains(b.Text(), "3 unread messages") {
			t.Fatalf("badge %q", b.Text())
		}
		if rows.Eq(0).AttrOr("data-unread", "no") == "no" || rows.Eq(1).AttrOr("data-unread", "no") != "no" {
			t.Fatal("data-unread wrong")
		}
		if rows.Eq(1).Find(`[data-testid="unread-badge"]`).Length() != 0 {
			t.Fatal("read row has a badge")
		}
	})
	t.Run("muted row is marked", func(t *testing.T) {
		if rows.Eq(1).Find(`[data-testid="muted"]`).Length() != 1 || rows.Eq(0).Find(`[data-testid="muted"]`).Length() != 0 {
			t.Fatal("muted mark wrong")
		}
	})
	t.Run("member without avatar shows initials", func(t *testing.T) {
		if got := rows.Eq(1).Find(`[data-testid="avatar-initials"]`).Text(); got != "Z" {
			t.Fatalf("initials %q, want Z", got)
		}
		if src, _ := rows.Eq(0).Find(`img[data-testid="avatar"]`).Attr("src"); !strings.HasPrefix(src, "https://cdn.bsky.app/") {
			t.Fatalf("avatar src %q", src)
		}
	})
	t.Run("row links to the conversation with relative time", func(t *testing.T) {
		if href, _ := rows.Eq(2).Find("a").Attr("href"); href != "/convos/convo002#latest" {
			t.Fatalf("href %q", href)
		}
		tm := rows.Eq(2).Find(`time[data-testid="reltime"]`)
		if dt, _ := tm.Attr("datetime"); dt != "2025-03-04T14:32:00Z" || tm.Text() != "28m" {
			t.Fatalf("time %q %q", dt, tm.Text())
		}
	})
	t.Run("tabs show request count and load more keeps cursor", func(t *testing.T) {
		if got := doc.Find(`[data-testid="request-count"]`).Text(); !strings.Contains(got, "2") {
			t.Fatalf("request count %q", got)
		}
		if cur, _ := doc.Find(`[data-testid="tab-inbox"]`).Attr("aria-current"); cur != "page" {
			t.Fatalf("inbox tab aria-current %q", cur)
		}
		if href, _ := doc.Find(`[data-testid="load-more"]`).Attr("href"); href != "/?cursor=cur-2" {
			t.Fatalf("load more %q", href)
		}
		if href, _ := doc.Find(`[data-testid="unread-filter"]`).Attr("href"); href != "/?unread=1" {
			t.Fatalf("unread filter %q", href)
		}
	})
	t.Run("layout wraps the page and dm assets are linked", func(t *testing.T) {
		if doc.Find(`main#main [data-testid="convo-list"]`).Length() != 1 {
			t.Fatal("inbox not inside the layout's main")
		}
		if doc.Find(`link[href="/static/dm.css?v=1"]`).Length() != 1 || doc.Find(`script[src="/static/dm.js?v=1"]`).Length() != 1 {
			t.Fatal("dm assets not linked")
		}
	})
}

func TestInboxEmptyStates(t *testing.T) {
	tests := []struct {
		name string
		vm   InboxVM
		want string
	}{
		{"empty inbox invites a new message", InboxVM{Now: dmNow}, "No conversations yet"},
		{"empty requests tab says no requests", InboxVM{Tab: TabRequests, Now: dmNow}, "No message requests."},
		{"empty unread filter says no unread", InboxVM{UnreadOnly: true, Now: dmNow}, "No unread conversations."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := renderDoc(t, InboxBody(tt.vm))
			if got := doc.Find(`[data-testid="empty"]`).Text(); !strings.Contains(got, tt.want) {
				t.Fatalf("empty state %q, want %q", got, tt.want)
			}
			if doc.Find(`[data-testid="load-more"]`).Length() != 0 {
				t.Fatal("load more without cursor")
			}
		})
	}
}

func TestRelTime(t *testing.T) {
	tests := []struct {
		name string
		t    int64 // seconds before dmNow
		want string
	}{
		{"under a minute is now", 30, "now"},
		{"minutes", 2 * 60, "2m"},
		{"hours", 3 * 3600, "3h"},
		{"within a week is weekday", 3 * 86400, "Sat"},
		{"this year is month and day", 40 * 86400, "Jan 23"},
		{"earlier year has the year", 400 * 86400, "Jan 29, 2024"},
		{"future is now", -60, "now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := dmNow.Add(-secs(tt.t))
			if got := RelTime(at, dmNow, nil); got != tt.want {
				t.Fatalf("RelTime = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRelTimeTagEscapesZoneNames(t *testing.T) {
	loc := time.FixedZone(`<b>"x"&'`, 3600)
	_, html := renderDoc(t, RelTimeTag(dmNow.Add(-2*time.Minute), dmNow, loc))
	want := `<time datetime="2025-03-04T14:58:00Z" title="Tue, 4 Mar 2025 15:58 &lt;b&gt;&#34;x&#34;&amp;&#39;" data-testid="reltime">2m</time>`
	if html != want {
		t.Fatalf("got  %s\nwant %s", html, want)
	}
	_, empty := renderDoc(t, RelTimeTag(time.Time{}, dmNow, nil))
	if empty != "" {
		t.Fatalf("zero time rendered %q", empty)
	}
}
