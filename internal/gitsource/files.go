package gitsource

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/pgsync/pgsync/internal/cluster"
)

// ErrPathNotFound is matched (errors.Is) by Files' error for a directory
// that does not exist at the commit.
var ErrPathNotFound = errors.New("path not found")

// Files returns every *.yaml and *.yml file under dir (recursively; "" or
// "." is the whole tree) at commit, with Path relative to the repository
// root, forward slashes, sorted by Path. commit is normally a SHA from
// Resolve; any revision Resolve accepts works. Symbolic links and
// submodules are skipped: their blobs are not YAML content.
func (r *Repository) Files(commit, dir string) ([]cluster.File, error) {
	defer r.release()
	prefix, err := cleanDir(dir)
	if err != nil {
		return nil, err
	}
	c, err := r.commit(commit)
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading tree of %s: %w", c.Hash, err)
	}
	if prefix != "" {
		entry, err := tree.FindEntry(prefix)
		if err != nil {
			return nil, fmt.Errorf("directory %q does not exist at commit %s: %w", prefix, c.Hash, ErrPathNotFound)
		}
		if entry.Mode != filemode.Dir {
			return nil, fmt.Errorf("%q at commit %s is not a directory", prefix, c.Hash)
		}
		if tree, err = r.repo.TreeObject(entry.Hash); err != nil {
			return nil, fmt.Errorf("reading tree %q at %s: %w", prefix, c.Hash, err)
		}
	}
	var files []cluster.File
	if err := r.collect(tree, prefix, &files); err != nil {
		return nil, fmt.Errorf("reading files at %s: %w", c.Hash, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// cleanDir turns a user's directory into a tree path: "" for the root, no
// leading "./" or trailing "/", never leaving the repository.
func cleanDir(dir string) (string, error) {
	d := strings.ReplaceAll(dir, `\`, "/")
	if strings.HasPrefix(d, "/") {
		return "", fmt.Errorf("directory %q must be relative to the repository root", dir)
	}
	d = path.Clean(d)
	switch {
	case d == ".":
		return "", nil
	case d == ".." || strings.HasPrefix(d, "../"):
		return "", fmt.Errorf("directory %q leaves the repository", dir)
	}
	return d, nil
}

func (r *Repository) collect(tree *object.Tree, prefix string, out *[]cluster.File) error {
	for _, e := range tree.Entries {
		p := e.Name
		if prefix != "" {
			p = prefix + "/" + e.Name
		}
		switch e.Mode {
		case filemode.Dir:
			sub, err := r.repo.TreeObject(e.Hash)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := r.collect(sub, p, out); err != nil {
				return err
			}
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			if !isYAML(e.Name) {
				continue
			}
			data, err := r.blob(e.Hash)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			*out = append(*out, cluster.File{Path: p, Data: data})
		}
	}
	return nil
}

func isYAML(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

func (r *Repository) blob(h plumbing.Hash) ([]byte, error) {
	obj, err := r.repo.Storer.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, err
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	data := make([]byte, obj.Size())
	if _, err := io.ReadFull(rd, data); err != nil {
		return nil, err
	}
	return data, nil
}
