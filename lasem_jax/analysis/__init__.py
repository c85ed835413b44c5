"""Reading results: settings, paired comparisons, reports and figures."""
