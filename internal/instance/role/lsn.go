package role

import "github.com/pgsync/pgsync/internal/podcontract"

// LSN is the pod contract's WAL position (the decisions compare them).
type LSN = podcontract.LSN

// ParseLSN reads the textual form PostgreSQL prints ("16/B374D848").
func ParseLSN(s string) (LSN, error) { return podcontract.ParseLSN(s) }
