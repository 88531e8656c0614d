-- A default global vocabulary, so that a new user gets tag suggestions before an
-- administrator has curated anything. The tags are ordinary curated tags: an
-- administrator removes or extends them with the vocabulary endpoints, and a tag
-- removed later is not brought back (this runs once, on upgrade or first start).
INSERT INTO tags (tag, source)
SELECT t, 'curated'
FROM unnest(ARRAY[
    'animals', 'architecture', 'art', 'beach', 'birthday', 'business', 'cars', 'city',
    'cooking', 'dance', 'documentary', 'education', 'family', 'fashion', 'fitness',
    'flowers', 'food', 'football', 'friends', 'funny', 'gaming', 'garden', 'history',
    'holiday', 'interview', 'landscape', 'lecture', 'mountains', 'music', 'nature',
    'news', 'night', 'party', 'pets', 'portrait', 'presentation', 'recipe', 'science',
    'sea', 'sport', 'street', 'sunset', 'technology', 'travel', 'tutorial', 'wedding',
    'winter', 'work'
]) AS t
ON CONFLICT (tag) DO NOTHING;
