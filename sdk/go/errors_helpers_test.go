package zotartifacts_test

import (
	"errors"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

func asError(err error, target **zotartifacts.Error) bool { return errors.As(err, target) }
