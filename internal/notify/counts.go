package notify

import (
	"context"
	"fmt"
)

// states lists every State, for counts that name each one.
var states = []State{StateQueued, StateSending, StateSent, StateNotDelivered, StateParkedAuth, StateGivenUp}

// CountByState returns how many outbox rows are in each state, every
// state named (zero counts included). One grouped query over the
// (state, next_attempt_at) index, cheap enough for each metrics scrape.
func (w *Worker) CountByState(ctx context.Context) (map[string]int, error) {
	out := make(map[string]int, len(states))
	for _, s := range states {
		out[string(s)] = 0
	}
	rows, err := w.store.db.QueryContext(ctx, `SELECT state, count(*) FROM outbox GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("notify: counting rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			state string
			n     int
		)
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("notify: counting rows: %w", err)
		}
		out[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: counting rows: %w", err)
	}
	return out, nil
}
