module zotartifacts-bench

go 1.19

require github.com/zot-artifact-store/zot-artifact-store/sdk/go v0.0.0

replace github.com/zot-artifact-store/zot-artifact-store/sdk/go => ../../sdk/go
