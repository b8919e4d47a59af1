"""Hand-written vocabulary of frequent conversational English, by grammatical role.

Every word here is in the CMU dictionary (a test checks it). Phrases are space-separated and
count as several words. Verbs are (base, third person singular, past) triples, grouped by the
kind of object they take so that the grammar says "cook dinner", not "cook the bus".
"""

from __future__ import annotations

Verb = tuple[str, str, str]

SUBJECTS_SG: tuple[str, ...] = (
    "he", "she", "my wife", "my husband", "my mom", "my dad", "my brother", "my sister",
    "my son", "my daughter", "my friend", "my best friend", "our neighbor", "the teacher",
    "my boss", "the doctor", "my uncle", "my aunt", "my cousin", "my grandmother",
    "my grandfather", "my roommate", "the manager", "her husband", "his wife",
)  # fmt: skip
SUBJECTS_PL: tuple[str, ...] = (
    "we", "you", "they", "my parents", "my kids", "my friends", "most people",
    "a lot of people", "our neighbors", "the kids", "my wife and i", "the students",
    "my brothers", "the girls", "the boys",
)  # fmt: skip
NAMES: tuple[str, ...] = (
    "john", "mary", "david", "sarah", "mike", "lisa", "tom", "susan", "james", "linda", "bob",
    "karen", "steve", "nancy", "paul", "anna", "peter", "kevin", "laura", "chris", "amy",
    "mark", "emily", "jack", "kate", "joe", "helen", "frank", "rachel", "dan",
)  # fmt: skip
PERSON_OBJECTS: tuple[str, ...] = (
    "him", "her", "them", "everyone", "my mom", "my dad", "my parents", "my brother",
    "my sister", "the doctor", "our neighbor", "my friend", "my best friend", "the kids",
    "my grandmother", "my boss", "the teacher", "my cousin", "the family", "my uncle",
)  # fmt: skip

DETERMINERS: tuple[str, ...] = ("the", "my", "our", "your", "his", "her", "their", "that", "a")
ADJ_THING: tuple[str, ...] = (
    "new", "old", "big", "small", "little", "nice", "good", "great", "cheap", "red", "blue",
    "black", "white", "green", "expensive", "favorite", "beautiful", "used", "broken", "heavy",
)  # fmt: skip
ADJ_FOOD: tuple[str, ...] = ("hot", "cold", "fresh", "good", "big", "little", "spicy", "sweet")
THING_NOUNS: tuple[str, ...] = (
    "car", "phone", "computer", "bike", "chair", "table", "lamp", "radio", "camera", "bag",
    "clock", "door", "window", "fence", "couch", "bed", "desk", "boat", "truck", "jacket",
    "coat", "shirt", "dress", "key", "ring", "picture", "box", "ticket", "letter", "card",
    "washer", "stove", "lawn mower", "sweater", "watch", "guitar", "piano", "tent", "blanket",
    "mirror",
)  # fmt: skip
VEHICLE_NOUNS: tuple[str, ...] = ("car", "truck", "van", "bus", "motorcycle", "tractor", "boat")
FOOD_MASS: tuple[str, ...] = (
    "pizza", "salad", "cake", "pie", "soup", "pasta", "chicken", "bread", "coffee", "tea",
    "breakfast", "lunch", "dinner", "fish", "cheese", "rice", "beans", "eggs", "ice cream",
    "popcorn", "pancakes", "turkey", "cookies", "sauce", "vegetables", "fruit", "potatoes",
)  # fmt: skip
FOOD_COUNT: tuple[str, ...] = (
    "sandwich", "steak", "burger", "apple", "cookie", "banana", "orange", "pizza", "salad",
    "pie", "cake", "sausage", "omelet", "taco",
)  # fmt: skip
MEDIA_NOUNS: tuple[str, ...] = (
    "movie", "show", "game", "song", "album", "play", "concert", "video", "story", "program",
    "news", "speech", "lecture", "match", "series", "parade",
)  # fmt: skip
BOOK_NOUNS: tuple[str, ...] = (
    "book", "magazine", "newspaper", "article", "letter", "story", "novel", "poem", "report",
    "menu", "email", "message", "recipe",
)  # fmt: skip
PLACE_NOUNS: tuple[str, ...] = (
    "house", "city", "town", "beach", "park", "church", "school", "office", "store", "museum",
    "library", "restaurant", "farm", "lake", "garden", "kitchen", "yard", "hospital",
    "hotel", "airport", "mall", "gym", "zoo", "river", "island", "apartment", "bank",
)  # fmt: skip
DESTINATIONS: tuple[str, ...] = (
    "the store", "the beach", "the park", "church", "school", "work", "bed", "the doctor",
    "the mall", "the gym", "the city", "the lake", "the movies", "a concert", "the game",
    "college", "dinner", "the hospital", "the airport", "the bank", "the library", "town",
    "the office", "class", "lunch", "the zoo", "the dentist", "the farm", "a party",
)  # fmt: skip
EVENT_NOUNS: tuple[str, ...] = (
    "day", "weekend", "trip", "vacation", "dinner", "class", "meeting", "game", "party",
    "interview", "flight", "holiday", "birthday", "wedding", "test", "week", "summer",
)  # fmt: skip
PLURAL_NOUNS: tuple[str, ...] = (
    "kids", "brothers", "sisters", "dogs", "cats", "cars", "friends", "classes", "shoes",
    "books", "plants", "pets", "cousins", "computers", "horses",
)  # fmt: skip
KIND_NOUNS: tuple[str, ...] = ("music", "food", "movies", "books", "sports", "games", "shows")

# (base, 3rd person singular, past), by object kind
VERBS_FOOD: tuple[Verb, ...] = (
    ("eat", "eats", "ate"), ("cook", "cooks", "cooked"), ("make", "makes", "made"),
    ("buy", "buys", "bought"), ("want", "wants", "wanted"), ("love", "loves", "loved"),
    ("like", "likes", "liked"), ("bring", "brings", "brought"), ("order", "orders", "ordered"),
    ("get", "gets", "got"), ("share", "shares", "shared"), ("finish", "finishes", "finished"),
)  # fmt: skip
VERBS_MEDIA: tuple[Verb, ...] = (
    ("watch", "watches", "watched"), ("see", "sees", "saw"), ("like", "likes", "liked"),
    ("love", "loves", "loved"), ("enjoy", "enjoys", "enjoyed"), ("miss", "misses", "missed"),
    ("hate", "hates", "hated"), ("remember", "remembers", "remembered"),
    ("record", "records", "recorded"), ("finish", "finishes", "finished"),
)  # fmt: skip
VERBS_BOOK: tuple[Verb, ...] = (
    ("read", "reads", "read"), ("write", "writes", "wrote"), ("find", "finds", "found"),
    ("send", "sends", "sent"), ("print", "prints", "printed"), ("check", "checks", "checked"),
    ("finish", "finishes", "finished"), ("lose", "loses", "lost"),
)  # fmt: skip
VERBS_PERSON: tuple[Verb, ...] = (
    ("call", "calls", "called"), ("visit", "visits", "visited"), ("miss", "misses", "missed"),
    ("help", "helps", "helped"), ("see", "sees", "saw"), ("know", "knows", "knew"),
    ("like", "likes", "liked"), ("love", "loves", "loved"), ("meet", "meets", "met"),
    ("ask", "asks", "asked"), ("remember", "remembers", "remembered"),
    ("trust", "trusts", "trusted"), ("thank", "thanks", "thanked"), ("invite", "invites",
    "invited"), ("pick up", "picks up", "picked up"), ("text", "texts", "texted"),
)  # fmt: skip
VERBS_THING: tuple[Verb, ...] = (
    ("buy", "buys", "bought"), ("sell", "sells", "sold"), ("fix", "fixes", "fixed"),
    ("clean", "cleans", "cleaned"), ("paint", "paints", "painted"), ("wash", "washes", "washed"),
    ("use", "uses", "used"), ("need", "needs", "needed"), ("want", "wants", "wanted"),
    ("get", "gets", "got"), ("find", "finds", "found"), ("keep", "keeps", "kept"),
    ("open", "opens", "opened"), ("move", "moves", "moved"), ("lose", "loses", "lost"),
    ("break", "breaks", "broke"), ("borrow", "borrows", "borrowed"), ("return", "returns",
    "returned"), ("carry", "carries", "carried"), ("check", "checks", "checked"),
)  # fmt: skip
VERBS_VEHICLE: tuple[Verb, ...] = (
    ("drive", "drives", "drove"), ("fix", "fixes", "fixed"), ("wash", "washes", "washed"),
    ("sell", "sells", "sold"), ("park", "parks", "parked"), ("rent", "rents", "rented"),
)  # fmt: skip
VERBS_PLACE: tuple[Verb, ...] = (
    ("visit", "visits", "visited"), ("like", "likes", "liked"), ("love", "loves", "loved"),
    ("miss", "misses", "missed"), ("clean", "cleans", "cleaned"), ("leave", "leaves", "left"),
    ("paint", "paints", "painted"), ("find", "finds", "found"),
)  # fmt: skip
VERBS_INTRANSITIVE: tuple[Verb, ...] = (
    ("work", "works", "worked"), ("sleep", "sleeps", "slept"), ("cook", "cooks", "cooked"),
    ("read", "reads", "read"), ("run", "runs", "ran"), ("walk", "walks", "walked"),
    ("swim", "swims", "swam"), ("dance", "dances", "danced"), ("sing", "sings", "sang"),
    ("travel", "travels", "traveled"), ("wait", "waits", "waited"), ("laugh", "laughs",
    "laughed"), ("leave", "leaves", "left"), ("win", "wins", "won"), ("lose", "loses", "lost"),
    ("stay", "stays", "stayed"), ("study", "studies", "studied"), ("relax", "relaxes",
    "relaxed"), ("rest", "rests", "rested"), ("play", "plays", "played"), ("exercise",
    "exercises", "exercised"), ("shop", "shops", "shopped"), ("drive", "drives", "drove"),
    ("smile", "smiles", "smiled"), ("cry", "cries", "cried"), ("agree", "agrees", "agreed"),
    ("move", "moves", "moved"), ("forget", "forgets", "forgot"), ("call", "calls", "called"),
    ("help", "helps", "helped"), ("try", "tries", "tried"), ("arrive", "arrives", "arrived"),
    ("listen", "listens", "listened"), ("paint", "paints", "painted"), ("fish", "fishes",
    "fished"), ("garden", "gardens", "gardened"), ("practice", "practices", "practiced"),
)  # fmt: skip

ADJ_PERSON: tuple[str, ...] = (
    "tired", "busy", "happy", "sick", "ready", "late", "sure", "excited", "worried", "upset",
    "glad", "sorry", "lucky", "right", "wrong", "home", "hungry", "nervous", "proud", "angry",
    "bored", "fine", "okay", "early", "confused", "sleepy", "surprised",
)  # fmt: skip
ADJ_EVAL: tuple[str, ...] = (
    "good", "great", "fine", "nice", "hard", "easy", "fun", "funny", "interesting", "boring",
    "important", "different", "beautiful", "crazy", "amazing", "terrible", "awful", "perfect",
    "strange", "weird", "exciting", "scary", "sad", "cool", "expensive", "cheap", "long",
    "short", "loud", "quiet", "crowded", "wonderful", "silly", "stupid", "true", "special",
)  # fmt: skip
ADJ_WEATHER: tuple[str, ...] = ("cold", "hot", "warm", "windy", "nice", "cloudy", "rainy", "dry")
DEGREES: tuple[str, ...] = ("really", "very", "pretty", "so", "kind of", "a little", "too")
FREQUENCY: tuple[str, ...] = ("always", "usually", "never", "sometimes", "often", "really")
MODALS: tuple[str, ...] = ("can", "could", "should", "will", "would", "might", "can't", "won't")

TIME_PAST: tuple[str, ...] = (
    "yesterday", "last night", "last week", "last year", "this morning", "on saturday",
    "a few days ago", "two weeks ago", "a long time ago", "last summer", "over the weekend",
    "at lunch", "on monday", "last month", "after dinner", "before work",
)  # fmt: skip
TIME_FUTURE: tuple[str, ...] = (
    "tomorrow", "tonight", "next week", "next year", "this weekend", "on sunday", "later",
    "soon", "after work", "in the morning", "next summer", "on friday", "next month",
    "after lunch", "this afternoon",
)  # fmt: skip
TIME_HABIT: tuple[str, ...] = (
    "every day", "every morning", "on weekends", "every week", "at night", "in the summer",
    "all the time", "most of the time", "every sunday", "in the winter", "after school",
)  # fmt: skip
PLACE_ADVERBS: tuple[str, ...] = (
    "at home", "at work", "at school", "in the kitchen", "in the garden", "in the city",
    "at the park", "with my family", "with my friends", "with the kids", "downtown",
    "outside", "at the beach", "in the car", "at church", "in the yard", "by the lake",
    "at the office", "upstairs", "in the basement", "together", "alone",
)  # fmt: skip

OPENERS: tuple[str, ...] = (
    "well", "so", "yeah", "oh", "actually", "honestly", "you know", "i mean", "anyway",
    "okay", "and", "but", "oh well", "to be honest", "by the way", "of course", "right",
    "now", "sure", "no",
)  # fmt: skip
OPINION_HEADS: tuple[str, ...] = (
    "i think", "i don't think", "i guess", "i hope", "i know", "i feel like", "i heard that",
    "i'm sure", "i bet", "it seems like", "i'm not sure if", "maybe", "i believe",
    "i'm glad", "i wonder if", "i forgot that", "i can't believe", "it's funny that",
    "i told you", "you know", "i just found out that", "i'm afraid",
)  # fmt: skip
CONJUNCTIONS: tuple[str, ...] = (
    "and", "but", "so", "because", "when", "if", "and then", "after", "before", "since",
    "while", "or",
)  # fmt: skip
SHORT_PHRASES: tuple[str, ...] = (
    "thank you", "me too", "i agree", "sounds good", "that's true", "not really",
    "i don't know", "oh really", "good morning", "see you later", "i'm fine", "no problem",
    "that's great", "i love it", "of course", "good night", "excuse me", "i see",
    "never mind", "that's right", "it depends", "i'm sorry", "same here", "come on",
    "let's go", "that's funny", "good idea", "very nice", "take care", "i forgot",
    "nice to meet you", "i don't think so", "that's too bad", "you're welcome", "hold on",
    "i'm not sure", "good luck", "happy birthday", "welcome back", "that makes sense",
    "i can't wait",
)  # fmt: skip
SHORT_QUESTIONS: tuple[str, ...] = (
    "how are you", "what happened", "what do you mean", "who knows", "are you sure",
    "what time is it", "where are you", "is that right", "is it raining", "why not",
    "how about you",
)  # fmt: skip
PERFECTS: tuple[str, ...] = (
    "lived here", "worked there", "known him", "known her", "been married", "had that car",
    "played the piano", "been sick", "lived in this town", "worked at the bank",
)  # fmt: skip
START_VERBS: tuple[str, ...] = ("start", "end", "open", "close", "begin", "finish")
TIMED_NOUNS: tuple[str, ...] = ("game", "movie", "show", "store", "class", "party", "meeting")
CAPITALISED: frozenset[str] = frozenset(
    {*NAMES, "monday", "friday", "saturday", "sunday", "christmas"}
)
