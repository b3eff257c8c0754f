"""Human in the loop: stored feedback, the review queue, annotator answers, agreement, label export."""
