// Package lexicons embeds skydm's own record lexicons (lexicons/dev/skydm/*.json)
// so tests and tools can load them, e.g. into an indigo lexicon catalog.
package lexicons

import "embed"

// FS holds the lexicon JSON files, under "dev/skydm/".
//
//go:embed dev
var FS embed.FS
