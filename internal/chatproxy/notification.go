package chatproxy

import (
	"context"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Values of a chat notification preference's include
// (chat.bsky.notification.defs#chatPreference).
const (
	NotifyIncludeAll     = "all"
	NotifyIncludeFollows = "follows"
)

// GetNotificationPreferences calls chat.bsky.notification.getPreferences:
// the account's chat notification preferences (the service's defaults when
// it has set none). Errors are *apperr.Error; a response without both
// preferences is BadResponse.
func (c *Client) GetNotificationPreferences(ctx context.Context) (*chat.NotificationDefs_Preferences, error) {
	var out *chat.NotificationGetPreferences_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.NotificationGetPreferences(ctx, c.api)
		return err
	})
	if err != nil {
		return nil, err
	}
	return wholePrefs("chat.bsky.notification.getPreferences", out.Preferences)
}

// PutNotificationPreferences calls chat.bsky.notification.putPreferences
// with the preferences given (a nil one is left unchanged) and returns the
// preferences now in effect. An include other than NotifyIncludeAll or
// NotifyIncludeFollows is refused before calling (Invalid).
func (c *Client) PutNotificationPreferences(ctx context.Context, in chat.NotificationPutPreferences_Input) (*chat.NotificationDefs_Preferences, error) {
	if err := CheckNotificationPreferences(in); err != nil {
		return nil, err
	}
	var out *chat.NotificationPutPreferences_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.NotificationPutPreferences(ctx, c.api, &in)
		return err
	})
	if err != nil {
		return nil, err
	}
	return wholePrefs("chat.bsky.notification.putPreferences", out.Preferences)
}

// CheckNotificationPreferences returns Invalid when a preference of in has
// an include other than NotifyIncludeAll or NotifyIncludeFollows (the one
// check PutNotificationPreferences makes before calling).
func CheckNotificationPreferences(in chat.NotificationPutPreferences_Input) error {
	for _, p := range []*chat.NotificationDefs_ChatPreference{in.Chat, in.ChatRequest} {
		if p != nil && p.Include != NotifyIncludeAll && p.Include != NotifyIncludeFollows {
			return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: "Choose whose messages notify you."}
		}
	}
	return nil
}

// wholePrefs returns p, or BadResponse when a preference is missing.
func wholePrefs(nsid string, p *chat.NotificationDefs_Preferences) (*chat.NotificationDefs_Preferences, error) {
	if p == nil || p.Chat == nil || p.ChatRequest == nil {
		return nil, badResponse(nsid, errMissing("preferences"))
	}
	return p, nil
}
