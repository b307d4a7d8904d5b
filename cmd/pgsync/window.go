package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/pgsync/pgsync/internal/window"
)

// windowFlag is --maintenance-window, shared by run (which waits for it)
// and plan and status (which say when it opens).
type windowFlag struct{ text string }

func (w *windowFlag) register(f *pflag.FlagSet, what string) {
	f.StringVar(&w.text, "maintenance-window", "", "default maintenance window of clusters whose file names none, e.g. \"Sat 02:00-04:00 Europe/Rome\"; "+what)
}

// schedule is the parsed flag; the zero Schedule when not given.
func (w *windowFlag) schedule() (window.Schedule, error) {
	if w.text == "" {
		return window.Schedule{}, nil
	}
	s, err := window.Parse(w.text)
	if err != nil {
		return window.Schedule{}, fmt.Errorf("--maintenance-window: %w", err)
	}
	return s, nil
}
