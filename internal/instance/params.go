package instance

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"syscall"
	"time"
)

// reloadParameters re-reads the parameters file; on a change it rewrites
// pgsync.conf and reloads a running server (restart-only parameters then
// show in /status as pending restart).
func (m *Manager) reloadParameters(ctx context.Context) {
	if m.cfg.ParametersFile == "" || m.now().Before(m.nextParamsRead) {
		return
	}
	m.nextParamsRead = m.now().Add(time.Second)
	b, err := os.ReadFile(m.cfg.ParametersFile)
	if errors.Is(err, os.ErrNotExist) {
		b, err = []byte("{}"), nil
	}
	if err != nil {
		m.log.Warn("read parameters", "error", err.Error())
		return
	}
	if string(b) == m.paramsRaw {
		return
	}
	var p map[string]string
	if err := json.Unmarshal(b, &p); err != nil {
		m.log.Error("parameters file is not a JSON object of strings", "file", m.cfg.ParametersFile, "error", err.Error())
		m.paramsRaw = string(b)
		return
	}
	first := m.paramsRaw == ""
	m.params, m.paramsRaw = p, string(b)
	if first {
		return // applied by the next writeConfig before any start
	}
	st := m.owner.State()
	if ok, _ := m.hasData(); !ok || !st.Wanted {
		return
	}
	rec := m.upstream != "" || m.isStandbyConfigured()
	if err := m.writeConfig(rec, m.upstream); err != nil {
		m.log.Error("write configuration", "error", err.Error())
		return
	}
	if err := m.owner.Signal(ctx, syscall.SIGHUP); err != nil {
		m.log.Warn("reload", "error", err.Error())
	}
	m.log.Info("parameters changed: configuration reloaded")
}
