"""KOCs and referrals (推荐官): recommenders and their 联系我 codes, referral attribution that
cannot be gamed, the reward ledger, the weekly 光荣榜 and KOC candidates (docs/koc.md)."""
