module github.com/zot-artifact-store/zot-artifact-store/sdk/go

go 1.19
