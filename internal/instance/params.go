package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// configSnapshot is one version of the params ConfigMap: the parameters,
// the pg_hba lines and the config revision they make up together.
type configSnapshot struct {
	params map[string]string
	hba    []string
	// rep is the replication settings (synchronous replication), of the
	// same ConfigMap version.
	rep pc.Replication
	// superuserOff is spec.enableSuperuserAccess false (superuser.go);
	// a ConfigMap without the key predates the setting: access on, as
	// without any ConfigMap.
	superuserOff bool
	revision     string
	raw          string // what was read, identifying the version
}

// configFiles are the keys of the params ConfigMap as mounted.
type configFiles struct{ params, revision, hba, replication, superuser string }

// files returns the configured paths; the revision and pg_hba files
// default to their keys next to the parameters file (one ConfigMap
// volume).
func (c *Config) files() configFiles {
	f := configFiles{params: c.ParametersFile, revision: c.ConfigRevisionFile, hba: c.HBAFile}
	if f.params != "" {
		dir := filepath.Dir(f.params)
		f.replication = filepath.Join(dir, pc.ReplicationKey)
		f.superuser = filepath.Join(dir, pc.SuperuserAccessKey)
		if f.revision == "" {
			f.revision = filepath.Join(dir, pc.ConfigRevisionKey)
		}
		if f.hba == "" {
			f.hba = filepath.Join(dir, pc.HBAKey)
		}
	}
	return f
}

// readConfig reads one consistent version of the files and parses it. raw
// identifies the version read (to detect a change, valid or not).
func readConfig(f configFiles) (snap configSnapshot, raw string, err error) {
	data, err := readTogether(f.params, f.revision, f.hba, f.replication, f.superuser)
	if err != nil {
		return snap, "", err
	}
	raw = strings.Join([]string{string(data[0].b), string(data[1].b), string(data[2].b), string(data[3].b), string(data[4].b)}, "\x00")
	snap.params = map[string]string{}
	if data[0].ok {
		if err := json.Unmarshal(data[0].b, &snap.params); err != nil {
			return snap, raw, fmt.Errorf("%s is not a JSON object of strings: %w", f.params, err)
		}
	}
	if data[2].ok {
		if err := json.Unmarshal(data[2].b, &snap.hba); err != nil {
			return snap, raw, fmt.Errorf("%s is not a JSON array of strings: %w", f.hba, err)
		}
		for i, l := range snap.hba {
			if strings.TrimSpace(l) == "" || strings.ContainsAny(l, "\r\n") {
				return snap, raw, fmt.Errorf("%s: line %d is not one non-empty pg_hba.conf line", f.hba, i)
			}
		}
	}
	if data[3].ok {
		if err := json.Unmarshal(data[3].b, &snap.rep); err != nil {
			return snap, raw, fmt.Errorf("%s is not the replication settings: %w", f.replication, err)
		}
	}
	if data[4].ok {
		switch v := strings.TrimSpace(string(data[4].b)); v {
		case pc.SuperuserAccessOn:
		case pc.SuperuserAccessOff:
			snap.superuserOff = true
		default:
			return snap, raw, fmt.Errorf("%s: %q is neither %s nor %s", f.superuser, v, pc.SuperuserAccessOn, pc.SuperuserAccessOff)
		}
	}
	snap.revision = strings.TrimSpace(string(data[1].b))
	snap.raw = raw
	return snap, raw, nil
}

// content is a file's bytes; ok is false for a missing file.
type content struct {
	b  []byte
	ok bool
}

// readTogether reads files that are updated together. A ConfigMap volume
// swaps every key at once by replacing the `..data` symlink (each key is a
// symlink through it), then adds or removes the keys' own symlinks one by
// one and deletes the old version's directory. So a key of such a volume
// is read from the directory `..data` names, and the read is retried when
// a name resolved differently afterwards: it never mixes two versions, nor
// takes a deleted old version or a key's symlink not created yet for a
// missing key. Other files are read through their symlinks, resolved the
// same way. An empty path reads as missing.
func readTogether(paths ...string) ([]content, error) {
	resolve := func() []string {
		out := make([]string, len(paths))
		for i, p := range paths {
			switch {
			case p == "":
			case isVolumeKey(p):
				if v, err := os.Readlink(filepath.Join(filepath.Dir(p), "..data")); err == nil {
					out[i] = filepath.Join(filepath.Dir(p), v, filepath.Base(p))
					continue
				}
				fallthrough
			default:
				if r, err := filepath.EvalSymlinks(p); err == nil {
					out[i] = r
				} else {
					out[i] = p
				}
			}
		}
		return out
	}
	for range 5 {
		before := resolve()
		out := make([]content, len(paths))
		var err error
		for i, p := range before {
			if p == "" {
				continue
			}
			b, e := os.ReadFile(p)
			switch {
			case e == nil:
				out[i] = content{b, true}
			case !errors.Is(e, os.ErrNotExist):
				err = fmt.Errorf("read %s: %w", paths[i], e)
			}
		}
		if slices.Equal(before, resolve()) {
			return out, err
		}
	}
	return nil, fmt.Errorf("%s kept changing while being read", filepath.Dir(paths[0]))
}

// isVolumeKey: p's directory is a ConfigMap-style volume (it has `..data`).
func isVolumeKey(p string) bool {
	_, err := os.Lstat(filepath.Join(filepath.Dir(p), "..data"))
	return err == nil
}

// reloadParameters re-reads the params ConfigMap; on a change it rewrites
// pgsync.conf and pg_hba.conf and reloads a running server (restart-only
// parameters then show in /status as pending restart). A version that does
// not parse is logged and ignored: the previous one stays in force.
func (m *Manager) reloadParameters(ctx context.Context) {
	f := m.cfg.files()
	if f.params == "" || m.now().Before(m.nextParamsRead) {
		return
	}
	m.nextParamsRead = m.now().Add(time.Second)
	snap, raw, err := readConfig(f)
	if err != nil {
		if raw != m.configRaw {
			m.log.Error("configuration not applied", "error", err.Error())
			m.status.update(func(s *Status) { s.LastError, s.LastErrorTime = err.Error(), m.now() })
		}
		m.configRaw = raw
		return
	}
	if m.configRead && raw == m.configRaw {
		return
	}
	m.config, m.configRaw, m.configRead = snap, raw, true
	if m.status.lastWrite().gen == 0 {
		return // nothing written yet: the first writeConfig, before any start, applies it
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
	m.log.Info("configuration changed: reloaded", "configRevision", snap.revision)
}
