package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

// BenchmarkMake plans n clusters, a tenth of them changed. The custom
// metric ns/cluster stays flat as n grows when planning is linear.
func BenchmarkMake(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			var base, head []cluster.File
			for i := 0; i < n; i++ {
				doc := strings.ReplaceAll(website(img131, 3, "  postgresql:\n    parameters:\n      shared_buffers: 256MB\n      work_mem: 8MB\n"), "name: website", fmt.Sprintf("name: db-%05d", i))
				base = append(base, cluster.File{Path: fmt.Sprintf("c%05d.yaml", i), Data: []byte(doc)})
				if i%10 == 0 {
					doc = strings.Replace(doc, img131, img132, 1)
				}
				head = append(head, cluster.File{Path: fmt.Sprintf("c%05d.yaml", i), Data: []byte(doc)})
			}
			bs, err := cluster.Load(base)
			if err != nil {
				b.Fatal(err)
			}
			hs, err := cluster.Load(head)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := Make(hs.Clusters, Converged(bs.Clusters), Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/cluster")
		})
	}
}
