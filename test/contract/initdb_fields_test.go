package contract

import (
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// spec.bootstrap.initdb's effects: the postgres container's variables the
// manager's bootstrap reads (internal/instance TestBootstrapInitDB shows
// them in the database), and the owner's password file's Secret.
func init() {
	env := func(name string) func(o *kube.Objects) any {
		return func(o *kube.Objects) any {
			for _, e := range postgres(o).Env {
				if e.Name == name {
					return e.Value
				}
			}
			return nil
		}
	}
	initdb := func(f func(i *cluster.BootstrapInitDB)) func(s *cluster.Spec) {
		return func(s *cluster.Spec) {
			i := &cluster.BootstrapInitDB{}
			f(i)
			s.Bootstrap = &cluster.BootstrapConfiguration{InitDB: i}
		}
	}
	options := "PGSYNC_INITDB: the manager's initdb options (TestBootstrapInitDB, TestInitdbArgs)"
	for path, e := range map[string]effect{
		"spec.bootstrap.initdb.database": {where: "PGSYNC_APP_DATABASE: the database the primary creates (TestBootstrapInitDB)",
			set: initdb(func(i *cluster.BootstrapInitDB) { i.Database = "shop" }), render: env(pc.EnvAppDatabase)},
		"spec.bootstrap.initdb.owner": {where: "PGSYNC_APP_USER: the database's owner role (TestBootstrapInitDB)",
			set: initdb(func(i *cluster.BootstrapInitDB) { i.Owner = "alice" }), render: env(pc.EnvAppUser)},
		"spec.bootstrap.initdb.secret.name": {where: "the Secret projected as the owner's password file (TestAPIInitDBOwnerSecret)",
			set: initdb(func(i *cluster.BootstrapInitDB) { i.Secret = &cluster.LocalObjectReference{Name: "shop-owner"} }),
			render: func(o *kube.Objects) any {
				var names []string
				for _, v := range podSpec(o).Volumes {
					if v.Projected != nil {
						for _, s := range v.Projected.Sources {
							if s.Secret != nil {
								names = append(names, s.Secret.Name)
							}
						}
					}
				}
				return names
			}},
		"spec.bootstrap.initdb.encoding": {where: options,
			set: initdb(func(i *cluster.BootstrapInitDB) { i.Encoding = "LATIN1" }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.localeCollate": {where: options,
			set: initdb(func(i *cluster.BootstrapInitDB) { i.LocaleCollate = "C" }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.localeCType": {where: options,
			set: initdb(func(i *cluster.BootstrapInitDB) { i.LocaleCType = "C" }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.locale": {where: options,
			set: initdb(func(i *cluster.BootstrapInitDB) { i.Locale = "C.UTF-8" }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.localeProvider": {where: options,
			set: initdb(func(i *cluster.BootstrapInitDB) { i.LocaleProvider = "libc" }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.icuLocale": {where: options,
			set: initdb(func(i *cluster.BootstrapInitDB) { i.LocaleProvider, i.ICULocale = "icu", "en-US" }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.icuRules": {where: options,
			set: func(s *cluster.Spec) {
				s.ImageName = "ghcr.io/cloudnative-pg/postgresql:16.4"
				initdb(func(i *cluster.BootstrapInitDB) { i.LocaleProvider, i.ICULocale, i.ICURules = "icu", "en-US", "&a < b" })(s)
			}, render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.builtinLocale": {where: options,
			set: func(s *cluster.Spec) {
				s.ImageName = "ghcr.io/cloudnative-pg/postgresql:17.6"
				initdb(func(i *cluster.BootstrapInitDB) { i.LocaleProvider, i.BuiltinLocale = "builtin", "C.UTF-8" })(s)
			}, render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.dataChecksums": {where: options,
			set: initdb(func(i *cluster.BootstrapInitDB) { i.DataChecksums = ptr(false) }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.walSegmentSize": {where: options,
			set: initdb(func(i *cluster.BootstrapInitDB) { i.WALSegmentSize = 32 }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.postInitSQL": {where: options + ", run in postgres",
			set: initdb(func(i *cluster.BootstrapInitDB) { i.PostInitSQL = []string{"SELECT 1"} }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.postInitApplicationSQL": {where: options + ", run in the application database",
			set: initdb(func(i *cluster.BootstrapInitDB) { i.PostInitApplicationSQL = []string{"SELECT 1"} }), render: env(pc.EnvInitDB)},
		"spec.bootstrap.initdb.postInitTemplateSQL": {where: options + ", run in template1",
			set: initdb(func(i *cluster.BootstrapInitDB) { i.PostInitTemplateSQL = []string{"SELECT 1"} }), render: env(pc.EnvInitDB)},
	} {
		effects[path] = e
	}
}
