// Package handlers is skydm's HTTP layer as one app: every route
// (routes.go) and the composition of the feature rooms behind them
// (New, Config). The rooms are its sub-packages: signin (sign-in, OAuth,
// accounts), dm (DMs and live updates), projectpages (projects and change
// requests), all on kit (middleware, rendering, the one error path).
package handlers
