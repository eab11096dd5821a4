extension TopicSelector {
    /// Whether every topic that `other` can match is matched by this selector, so that a grant of `self` allows a
    /// subscription to `other`. A pure function of the two selectors: no topic is enumerated.
    ///
    /// ```
    /// self        other          covers   why
    /// orders/**   orders/eu/*    yes      every orders/eu/<x> has one or more segments after orders
    /// orders/**   orders/x       yes
    /// orders/**   orders         no       ** needs at least one segment
    /// orders/*    orders/x       yes
    /// orders/*    orders/**      no       orders/x/y is not matched by orders/*
    /// orders/*    orders/x/y     no
    /// */x         orders/x       yes
    /// **          a/*/c          yes      ** matches every non-reserved topic
    /// **          $presence/x    no       a leading wildcard never matches a reserved topic
    /// $presence/* $presence/x    yes
    /// orders/x    orders/*       no       an exact topic covers only itself
    /// ```
    ///
    /// Position by position, `*` covers a literal or `*`, and a literal covers only the same literal. Without a final
    /// `**`, this selector needs `other` to be as long and to have no `**`. With a final `**` after `n` segments,
    /// `other` must have at least `n + 1` segments (its own `**` counting as one), the first `n` covered.
    public func covers(_ other: TopicSelector) -> Bool {
        if let topic = other.exactTopic { return self.matches(topic) }
        // `other` is a pattern: it has a wildcard, which no exact topic covers.
        guard self.exactTopic == nil else { return false }
        // A pattern that starts with a `$…` literal matches only reserved topics, which a pattern matches only
        // when it too starts with a literal.
        if case .literal(let first) = other.segments.first, first.utf8.first == UInt8(ascii: "$") {
            guard case .literal = self.segments.first else { return false }
        }
        let ownCount = self.segments.count
        let otherCount = other.segments.count
        let checked: Int
        if self.segments.last == .rest {
            guard otherCount >= ownCount else { return false }
            checked = ownCount - 1
        } else {
            guard otherCount == ownCount, other.segments.last != .rest else { return false }
            checked = ownCount
        }
        for position in 0..<checked {
            switch (self.segments[position], other.segments[position]) {
            case (.one, .one), (.one, .literal):
                continue
            case (.literal(let own), .literal(let requested)) where own == requested:
                continue
            default:
                return false
            }
        }
        return true
    }
}
