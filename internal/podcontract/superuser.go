package podcontract

// The superuser's access (spec.enableSuperuserAccess) reaches the managers
// in the params ConfigMap, so turning it on or off is a reload: the
// primary's manager sets or removes (NULL) the superuser's password and
// every manager renders pg_hba with or without the rules refusing its
// remote logins. Its password is the file SuperuserPasswordFile, projected
// from the user's spec.superuserSecret or from NAME-superuser (optional:
// neither exists while access is off), re-read while the manager runs.
const (
	// SuperuserAccessKey holds SuperuserAccessOn or SuperuserAccessOff. A
	// ConfigMap without it was rendered by a pgsync from before the
	// setting, whose superuser always had access: read as on.
	SuperuserAccessKey  = "superuser-access"
	SuperuserAccessFile = ParamsDir + "/" + SuperuserAccessKey
	SuperuserAccessOn   = "on"
	SuperuserAccessOff  = "off"
)
