package zotartifacts

import (
	"context"
	"net/http"
	"net/url"
)

// BucketOptions are a bucket's settings in CreateBucket; nil fields are left as they are.
type BucketOptions struct {
	// PublicRead lets anyone read the bucket's objects.
	PublicRead *bool
	// Labels replace the bucket's labels.
	Labels map[string]string
	// ExistOK applies the settings to an existing bucket instead of failing with 409.
	ExistOK bool
}

// CreateBucket creates a bucket. When it exists: with opts.ExistOK the given settings are
// applied and it is returned, else an *Error with Status 409 (Code "BucketAlreadyExists") and
// nothing changes.
func (c *Client) CreateBucket(ctx context.Context, name string, opts *BucketOptions) (*Bucket, error) {
	if opts == nil {
		opts = &BucketOptions{}
	}
	path := "/v1/buckets/" + seg(name)
	if !opts.ExistOK {
		// The store's PUT updates an existing bucket: look first, so nothing changes.
		resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, idempotent: true, accept: []int{404}})
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			return nil, &Error{Code: "BucketAlreadyExists", Status: http.StatusConflict,
				Message: "bucket " + name + " already exists", Type: "about:blank"}
		}
	}
	in := map[string]any{}
	if opts.PublicRead != nil {
		in["public_read"] = *opts.PublicRead
	}
	if opts.Labels != nil {
		in["labels"] = opts.Labels
	}
	return callFor[Bucket](ctx, c, http.MethodPut, path, in, true)
}

// GetBucket returns a bucket's settings.
func (c *Client) GetBucket(ctx context.Context, name string) (*Bucket, error) {
	return callFor[Bucket](ctx, c, http.MethodGet, "/v1/buckets/"+seg(name), nil, true)
}

// ListBuckets returns the buckets the caller may see.
func (c *Client) ListBuckets(ctx context.Context) ([]Bucket, error) {
	var out struct {
		Buckets []Bucket `json:"buckets"`
	}
	if err := c.jsonCall(ctx, http.MethodGet, "/v1/buckets", nil, &out, true); err != nil {
		return nil, err
	}
	return out.Buckets, nil
}

// DeleteBucket deletes a bucket; with recursive its objects first, else it must be empty
// (409 otherwise).
func (c *Client) DeleteBucket(ctx context.Context, name string, recursive bool) error {
	r := &request{method: http.MethodDelete, path: "/v1/buckets/" + seg(name), idempotent: true}
	if recursive {
		r.query = url.Values{"recursive": {"true"}}
	}
	return c.call(ctx, r, nil)
}
