// Package lru is a small least-recently-used cache, used as attnscope's bundled Go sample.
package lru

import "container/list"

// Cache holds at most Cap entries; the least recently used one is evicted first.
type Cache[K comparable, V any] struct {
	Cap   int
	ll    *list.List
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns an empty cache of capacity n.
func New[K comparable, V any](n int) *Cache[K, V] {
	return &Cache[K, V]{Cap: n, ll: list.New(), items: make(map[K]*list.Element)}
}

// Get returns the value for k and marks it as recently used.
func (c *Cache[K, V]) Get(k K) (v V, ok bool) {
	if e, hit := c.items[k]; hit {
		c.ll.MoveToFront(e)
		return e.Value.(*entry[K, V]).val, true
	}
	return v, false
}

// Put stores v under k, evicting the oldest entry when full.
func (c *Cache[K, V]) Put(k K, v V) {
	if e, hit := c.items[k]; hit {
		c.ll.MoveToFront(e)
		e.Value.(*entry[K, V]).val = v
		return
	}
	c.items[k] = c.ll.PushFront(&entry[K, V]{k, v})
	if c.ll.Len() > c.Cap {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*entry[K, V]).key)
	}
}
