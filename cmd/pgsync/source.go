package main

import (
	"github.com/spf13/cobra"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/desired"
)

// registerSource adds the flags that select the desired state in Git;
// validate and plan share them.
func registerSource(cmd *cobra.Command, s *desired.Source) {
	cmd.Flags().StringVar(&s.Repo, "repo", ".", "Git repository: a local path, or a file://, https:// or ssh:// URL")
	cmd.Flags().StringVar(&s.Ref, "ref", "HEAD", "branch, tag or commit to read")
	cmd.Flags().StringVar(&s.Path, "path", "", "directory of the repository holding the Cluster files (default: the whole repository)")
	cmd.Flags().StringVar(&s.VerifyKey, "verify-key", "", "armored OpenPGP public key ring: refuse to read a --ref commit that is not signed by one of its keys")
	cmd.Flags().StringVar(&s.DefaultImage, "default-image", cluster.DefaultImageName, "PostgreSQL image of Clusters that write neither imageName nor imageCatalogRef; changing it rolls them (a planned rolling update)")
}
