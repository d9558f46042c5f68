package master

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Usage is a partition's last reported consumption of one resource.
type Usage struct {
	Quantity float64 `json:"quantity"`
	Unit     string  `json:"unit,omitempty"`
	Date     string  `json:"date"`
}

// usageJournal is SlapOS's consumption report (slapos node report): a
// "Sale Packing List" transaction whose movements each give a resource, the
// partition (reference) and a quantity.
type usageJournal struct {
	Transactions []struct {
		StopDate  string `xml:"stop_date"`
		Movements []struct {
			Resource  string `xml:"resource"`
			Reference string `xml:"reference"`
			Quantity  string `xml:"quantity"`
			Unit      string `xml:"unit"`
		} `xml:"movement"`
	} `xml:"transaction"`
}

// recordUsage stores the movements of a useComputer report. slapproxy
// answers "Ignored" without reading it; slapnode keeps the latest figure per
// partition and resource for `slapnode info`, and still answers "Ignored".
// A report that is not such a journal (SlapOS also sends computer-level
// documents) is accepted and not stored.
func (m *Master) recordUsage(r *http.Request) (string, error) {
	computer, err := field(r, "computer_id")
	if err != nil {
		return "", err
	}
	if err := authorizeComputer(r, computer); err != nil {
		return "", err
	}
	var j usageJournal
	if xml.Unmarshal([]byte(r.Form.Get("use_string")), &j) != nil {
		return "Ignored", nil
	}
	err = m.tx(r.Context(), func(tx *txn) error {
		for _, t := range j.Transactions {
			for _, mv := range t.Movements {
				q, err := strconv.ParseFloat(strings.TrimSpace(mv.Quantity), 64)
				if err != nil || mv.Resource == "" || mv.Reference == "" {
					continue
				}
				if _, err := tx.execUnseen(`INSERT INTO usage (computer, partition, resource, quantity, unit, date) VALUES (?, ?, ?, ?, ?, ?)
					ON CONFLICT (computer, partition, resource) DO UPDATE SET quantity=excluded.quantity, unit=excluded.unit, date=excluded.date`,
					computer, strings.TrimSpace(mv.Reference), strings.TrimSpace(mv.Resource), q, strings.TrimSpace(mv.Unit), strings.TrimSpace(t.StopDate)); err != nil {
					return fmt.Errorf("record usage: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return "Ignored", nil
}

// partitionUsage reads what a partition last reported.
func partitionUsage(tx *txn, computer, partition string) (map[string]Usage, error) {
	rows, err := tx.Query(`SELECT resource, quantity, unit, date FROM usage WHERE computer=? AND partition=?`, computer, partition)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Usage{}
	for rows.Next() {
		var res string
		var u Usage
		if err := rows.Scan(&res, &u.Quantity, &u.Unit, &u.Date); err != nil {
			return nil, err
		}
		out[res] = u
	}
	if len(out) == 0 {
		return nil, rows.Err()
	}
	return out, rows.Err()
}
