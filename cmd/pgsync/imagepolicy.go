package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/pflag"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/imagegate"
	"github.com/pgsync/pgsync/internal/imagepolicy"
	"github.com/pgsync/pgsync/internal/plan"
)

// imagePolicyFlag is --image-policy FILE of plan, apply and run.
type imagePolicyFlag struct{ file string }

func (f *imagePolicyFlag) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.file, "image-policy", "", "enforce this image policy (docs/supply-chain.md) before any rollout: each cluster's image and the instance image are checked through the registry, pinned by digest, or refused at spec.imageName")
}

// gate parses the policy file: nil without --image-policy; an invalid
// file is an error with every problem at its line.
func (f *imagePolicyFlag) gate() (*imagegate.Gate, error) {
	if f.file == "" {
		return nil, nil
	}
	data, err := os.ReadFile(f.file)
	if err != nil {
		return nil, fmt.Errorf("--image-policy: %w", err)
	}
	p, err := imagepolicy.Parse(f.file, data)
	if err != nil {
		var es imagepolicy.Errors
		if errors.As(err, &es) {
			return nil, fmt.Errorf("--image-policy %s is invalid:\n%w", f.file, err)
		}
		return nil, fmt.Errorf("--image-policy: %w", err)
	}
	return &imagegate.Gate{Policy: p, Registry: imageRemote}, nil
}

// enforceImages checks the clusters' images and the instance image
// against the policy before planning: it returns the clusters to plan
// (pinned) and the verdicts. A refused cluster or instance image stops
// the command: the refusals are printed with the plan's other problems
// (planProblems, from planning the clusters as they are), positioned,
// and the exit status is 1.
func enforceImages(ctx context.Context, stderr io.Writer, g *imagegate.Gate, want []*cluster.Cluster, instanceImage string,
	planProblems func([]*cluster.Cluster) error) (*imagegate.Result, error) {
	res, err := g.Enforce(ctx, want, instanceImage)
	if err != nil {
		return nil, err
	}
	if len(res.Problems) == 0 && res.InstanceRefused == nil {
		return res, nil
	}
	problems := append(cluster.Errors{}, res.Problems...)
	var more cluster.Errors
	if err := planProblems(res.Clusters); errors.As(err, &more) {
		problems = append(problems, more...)
	}
	sort.SliceStable(problems, func(i, j int) bool {
		a, b := problems[i].Pos, problems[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	if res.InstanceRefused != nil {
		fmt.Fprintln(stderr, res.InstanceRefused)
	}
	if len(problems) > 0 {
		return nil, reportProblems(stderr, problems, "")
	}
	return nil, exitError{code: 1}
}

// withImages records the verdicts in the plan.
func withImages(p *plan.Plan, res *imagegate.Result) {
	if res != nil {
		plan.WithImages(p, res.Checks, res.Instance)
	}
}
